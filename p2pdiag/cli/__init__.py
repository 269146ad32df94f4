"""The command line: `main`, the one place where exceptions become exit codes and one-line messages.

`main` notes Ctrl-C and SIGTERM (`p2pdiag.interrupts`) before it imports anything, typer included,
so a signal at any moment of a run ends it with a trace that says so. The typer app is in `app.py`,
the options and helpers every command shares in `common.py`, and each command in a module of
its own (`dial`, `listen`, `analyze`, `demo`, `relaycheck`, `nat`, `lab`). Heavy libraries are
imported inside the command that needs them: `p2pdiag --help` loads no py-libp2p, aiortc or trio.
"""

from __future__ import annotations

import sys
import time

_started: float | None = None  # time.monotonic() when main began: --timeout counts from here


def started() -> float:
    return _started if _started is not None else time.monotonic()


def _fail(message: str, code: int, argv: list[str]) -> int:
    print(f"p2pdiag: error: {message}", file=sys.stderr)
    if "--json" in argv:
        from p2pdiag.render.json import dumps, error_document

        command = next((a for a in argv if not a.startswith("-")), "")
        print(dumps(error_document(command, code, message)))
    return code


def _is_click_error(exc: BaseException, name: str) -> bool:
    """typer may vendor its own click; match click's exception classes by name, not identity."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main(argv: list[str] | None = None) -> None:
    global _started  # noqa: PLW0603  (the program's start, once: --timeout counts from it)
    _started = time.monotonic()
    from p2pdiag import interrupts

    interrupts.install()
    args = list(sys.argv[1:] if argv is None else argv)
    code = _main(args)
    if argv is None and "libp2p" in sys.modules:
        # The program itself (not a caller in the same process, such as a test) and a probe ran:
        # everything is shown and the trace closed. Finalizing py-libp2p, aiortc and trio would
        # take a second or more and change nothing, so the process ends here.
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _main(args: list[str]) -> int:
    import typer

    from p2pdiag import interrupts
    from p2pdiag.errors import Interrupted, TraceFileError, UsageError
    from p2pdiag.exitcodes import ExitCode

    try:
        from p2pdiag.cli.app import app

        result = app(args=args, standalone_mode=False, prog_name="p2pdiag")
        if interrupts.pending():  # came while --help or --version answered: acted on by no one
            interrupts.release()
        return int(result) if isinstance(result, int) else 0
    except (UsageError, TraceFileError) as exc:
        return _fail(str(exc), int(ExitCode.USAGE), args)
    except (KeyboardInterrupt, Interrupted):
        return _fail("interrupted", int(ExitCode.INTERRUPTED), args)
    except Exception as exc:
        if isinstance(exc, typer.Exit):
            return exc.exit_code
        if isinstance(exc, typer.Abort):
            return _fail("interrupted", int(ExitCode.INTERRUPTED), args)
        if _is_click_error(exc, "NoArgsIsHelpError"):
            print(exc.ctx.get_help())  # type: ignore[attr-defined]
            return int(ExitCode.OK)
        if _is_click_error(exc, "UsageError"):
            return _fail(exc.format_message().replace("\n", " "), int(ExitCode.USAGE),  # type: ignore[attr-defined]
                         args)
        # a bug: say so in one line, and where to look
        code = _fail(f"internal error ({type(exc).__name__}: {exc}); please report it with the trace "
                     "(set P2PDIAG_DEBUG=1 for the traceback)", int(ExitCode.TOOL_ERROR), args)
        import os

        if os.environ.get("P2PDIAG_DEBUG"):
            raise
        return code
