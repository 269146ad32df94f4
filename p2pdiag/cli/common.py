"""What the commands share: their options, the checks at the door, the run with its trace, the result shown.

Only typer and the standard library are imported at module level: `p2pdiag --help` loads nothing
else. A bad value is refused here, before anything runs, as a UsageError (one line, exit 2).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperArgument, TyperCommand

from p2pdiag import __version__
from p2pdiag.errors import UsageError
from p2pdiag.exitcodes import ExitCode

if TYPE_CHECKING:
    from p2pdiag.diagnosis.model import Verdict
    from p2pdiag.trace.events import Event
    from p2pdiag.trace.file import Header
    from p2pdiag.trace.recorder import Recorder
    from p2pdiag.trace.redact import Redactor

BACKSTOP_S = 0.5  # after --timeout: the verdict is shown by then, whatever the run is doing
PIPE_WIDTH = 120  # the terminal view's width when stdout is not a terminal (rich would take 80)


# --- help ---------------------------------------------------------------------------------------


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: `TARGET`, not `{TARGET}` and `TARGET <str>`."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        return self.display_name_raw


class Command(TyperCommand):
    """Every command's class (`app.command(cls=Command)`): arguments by their metavar, in usage and help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument


# --- checks at the door ------------------------------------------------------------------------


def check_seconds(name: str, value: float | None, zero_ok: bool = False) -> float | None:
    """A number of seconds: finite, and more than zero (or zero or more when ZERO_OK)."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number of seconds, got {value}")
    if value < 0 or (value == 0 and not zero_ok):
        raise UsageError(f"{name} must be {'zero or more' if zero_ok else 'more than zero'} seconds, got {value:g}")
    return value


def seconds_option(default: float | None, *flags: str, help: str, zero_ok: bool = False) -> Any:
    """An option in seconds, checked by `check_seconds` as it is parsed."""
    return typer.Option(default, *flags, metavar="SECONDS", help=help,
                        callback=lambda value: check_seconds(flags[0], value, zero_ok))


def check_stun_url(url: str, option: str = "--stun") -> None:
    """stun:HOST[:PORT] or stuns:HOST[:PORT], as p2pdiag/wire/stun.py reads it."""
    from p2pdiag.wire.stun import parse_stun_url

    try:
        parse_stun_url("stun:" + url[len("stuns:"):] if url.startswith("stuns:") else url)
    except ValueError as exc:
        raise UsageError(f"{option} {url}: {exc}") from None


def check_turn_url(url: str) -> None:
    """turn:HOST[:PORT][?transport=udp|tcp] or turns:... (RFC 7065)."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in ("turn", "turns"):
        raise UsageError(f"--turn {url}: a TURN server URL starts with turn: or turns:")
    where, _, query = rest.partition("?")
    if query and query not in ("transport=udp", "transport=tcp"):
        raise UsageError(f"--turn {url}: the only parameter is transport=udp or transport=tcp, got {query!r}")
    from p2pdiag.wire.stun import parse_stun_url

    try:
        parse_stun_url(f"stun:{where}")  # the same HOST[:PORT]
    except ValueError:
        raise UsageError(f"--turn {url}: not a TURN server URL (turn:HOST[:PORT][?transport=udp|tcp])") from None


def check_ip(option: str, text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an IP address") from None


def step_timeouts(overrides: list[str]) -> Any:
    from p2pdiag.probes.timeouts import StepTimeouts, parse_override

    parsed: dict[str, float] = {}
    for text in overrides:
        try:
            name, seconds = parse_override(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        parsed[name] = seconds
    return StepTimeouts().with_overrides(parsed)


def ice_settings(stun: list[str], turn: list[str], turn_user: str | None, turn_credential: str | None,
                 policy: str, ice_timeout: float | None, addresses: list[str],
                 stun_timeout: float | None = None) -> tuple[Any, Any]:
    """The ICE servers the user gave (none by default) and the upgrade's timeouts, checked."""
    import dataclasses

    from p2pdiag.webrtc.config import IceConfig, TurnServer, UpgradeTimeouts

    if turn and (turn_user is None or turn_credential is None):
        raise UsageError("--turn needs --turn-user and --turn-credential")
    if not turn and (turn_user is not None or turn_credential is not None):
        raise UsageError("--turn-user and --turn-credential go with a --turn server; give --turn")
    for url in stun:
        check_stun_url(url)
    for url in turn:
        check_turn_url(url)
    for address in addresses:
        check_ip("--ice-address", address)
    try:
        ice = IceConfig(stun=tuple(stun), turn=tuple(TurnServer(u, turn_user or "", turn_credential or "")
                                                     for u in turn), policy=policy,
                        host_addresses=tuple(a for a in addresses if a != "127.0.0.1") if addresses else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if policy == "relay" and not turn:
        raise UsageError("--ice-policy relay uses only TURN candidates: give --turn")
    timeouts = UpgradeTimeouts()
    if ice_timeout is not None:
        timeouts = dataclasses.replace(timeouts, ice=ice_timeout)
    if stun_timeout is not None:
        timeouts = dataclasses.replace(timeouts, stun=stun_timeout)
    return ice, timeouts


# --- options more than one command takes ---------------------------------------------------------

JsonOpt = typer.Option(False, "--json", help="Print one JSON document (schema_version 1) on stdout.")
TraceOpt = typer.Option(None, "--trace", metavar="FILE",
                        help="Write the trace (JSON Lines) to this file, line by line.")
StepTimeoutOpt = typer.Option(
    [], "--step-timeout", metavar="NAME=SECONDS",
    help="Override one step's timeout (relay-connect, identify, hop, reserve, secure, ping, stop, transfer).",
)
StunOpt = typer.Option([], "--stun", metavar="URL", help="A STUN server (stun:HOST:PORT); repeatable. None by default.")
TurnOpt = typer.Option([], "--turn", metavar="URL", help="A TURN server (turn:HOST:PORT[?transport=udp|tcp]); "
                       "needs --turn-user and --turn-credential.")
TurnUserOpt = typer.Option(None, "--turn-user", metavar="USER", help="TURN username.")
TurnCredentialOpt = typer.Option(None, "--turn-credential", metavar="SECRET",
                                 help="TURN credential (never written to the trace).")
IcePolicyOpt = typer.Option("all", "--ice-policy", metavar="POLICY", help="ICE transport policy: all, or relay "
                            "(TURN only).")
RedactOpt = typer.Option(False, "--redact", help="Replace IP addresses (each keeps its class: private, CGNAT, "
                         "loopback, public; ports stay), peer ids and TURN credentials, in the trace and in what is "
                         "shown; the verdict stays the same.")
IceAddressOpt = typer.Option([], "--ice-address", metavar="ADDR", help="Gather host candidates only on this local "
                             "IP address (repeatable; 127.0.0.1 is always added). Default: every interface.")


def ice_timeout_option() -> Any:
    return seconds_option(None, "--ice-timeout", help="Seconds for ICE connectivity checks (default 4, under "
                          "js-libp2p's 6 s).")


def stun_timeout_option() -> Any:
    return seconds_option(None, "--stun-timeout", help="Seconds to wait for each STUN answer while gathering "
                          "(default 2): no answer by then ends gathering without that srflx candidate.")


# --- running a probe ---------------------------------------------------------------------------


def deadline(timeout_s: float | None) -> float | None:
    """When the run must stop, on time.monotonic(): --timeout counts from the moment p2pdiag started."""
    from p2pdiag.cli import started

    return None if timeout_s is None else started() + timeout_s


def libraries() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("libp2p", "trio", "aiortc", "aioice", "multiaddr"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


class TraceOutput:
    """--trace FILE. The header is written and flushed when it is opened, so a target that cannot be
    written is refused at the door (UsageError); a write that fails later (a full disk) stops the
    writing, says so in one stderr line, and the run goes on."""

    def __init__(self, path: Path, header: Header) -> None:
        from p2pdiag.trace.file import TraceWriter

        self.path = path
        self.failed = False
        try:
            # non-blocking open: a FIFO without a reader is refused instead of waited for
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
            os.set_blocking(fd, True)
            self._file = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--trace {path}: cannot write ({exc.strerror or exc})") from None
        self._writer = TraceWriter(self._file)
        try:
            self._writer.write_header(header)
        except OSError as exc:
            self.close()
            raise UsageError(f"--trace {path}: cannot write ({exc.strerror or exc})") from None

    def write_event(self, event: Event) -> None:
        if self.failed:
            return
        try:
            self._writer.write_event(event)
        except OSError as exc:
            self.failed = True
            print(f"p2pdiag: warning: --trace {self.path}: cannot write ({exc.strerror or exc}); the trace "
                  "stops here, the run goes on", file=sys.stderr, flush=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # what could not be flushed was said when it failed
            self._file.close()


Body = Callable[["Recorder"], Awaitable[None]]


def redactor(redact: bool) -> Redactor | None:
    """--redact: one run's placeholders, for its trace, its progress lines and its verdict alike."""
    if not redact:
        return None
    from p2pdiag.trace.redact import Redactor

    return Redactor()


def _load_verdict_modules(command: str, as_json: bool) -> None:
    """The diagnosis and the renderer, imported before the run rather than after: inside the
    budget, so that the verdict comes within a moment of --timeout running out. With --json, only
    the JSON renderer: the terminal view's (rich) is never used."""
    import p2pdiag.diagnosis
    import p2pdiag.render.json

    if as_json:
        return
    if command == "relay-check":
        import p2pdiag.render.relaycheck
    else:
        import p2pdiag.render.terminal  # noqa: F401


def run_and_show(command: str, options: dict[str, Any], body: Body, trace_path: Path | None,
                 timeout_s: float | None, as_json: bool, redactor: Redactor | None = None,
                 libp2p: bool = True) -> int:
    """Run a probe body through probes/run.py, streaming its trace to --trace; show the verdict and
    return its exit code. With a REDACTOR (--redact), the trace file, the progress lines and the
    verdict all have its placeholders; the run itself records what it saw.

    The trace is open, its header written, before the body can start, and from then on Ctrl-C or
    SIGTERM, whenever it comes, puts `run.interrupted` in it. --timeout holds even when the main
    thread is somewhere the run's own deadline cannot reach (importing py-libp2p, a teardown that
    hangs): BACKSTOP_S after it, an alarm records the interruption and shows the verdict."""
    import signal

    from p2pdiag.probes.run import record_interrupt, run, watch_signals
    from p2pdiag.trace.events import InterruptReason
    from p2pdiag.trace.file import Header, Trace
    from p2pdiag.trace.recorder import Recorder

    header = Header(command=command, options=options,
                    started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                    p2pdiag_version=__version__, libraries=libraries())
    rec = Recorder()

    def redacted(sink: Callable[[Event], None]) -> Callable[[Event], None]:
        return sink if redactor is None else lambda event: sink(redactor.event(event))

    out = TraceOutput(trace_path, header if redactor is None else redactor.header(header)) \
        if trace_path is not None else None
    if out is not None:
        rec.add_sink(redacted(out.write_event))
    if sys.stderr.isatty():  # one progress line per event, for a person watching
        from p2pdiag.render.progress import ProgressSink

        rec.add_sink(redacted(ProgressSink(sys.stderr)))
    watch_signals(rec)

    def conclude() -> int:
        if out is not None:
            out.close()
        from p2pdiag.diagnosis import diagnose

        trace = Trace(header=header, events=rec.events)
        return show(diagnose(trace if redactor is None else redactor.trace(trace)), as_json, trace_path)

    def backstop(signum: int, frame: Any) -> None:
        """In the main thread, wherever it was: everything conclude() needs is loaded already."""
        record_interrupt(rec, InterruptReason.BUDGET)
        try:
            code = conclude()
        except Exception as exc:  # noqa: BLE001  (e.g. stdout was mid-write: say so, still end in time)
            print(f"p2pdiag: error: --timeout ran out and the verdict could not be shown ({exc})", file=sys.stderr)
            code = int(ExitCode.INTERRUPTED)
        sys.stderr.flush()
        os._exit(code)

    _load_verdict_modules(command, as_json)  # before the alarm: it must never find them half imported
    end = deadline(timeout_s)
    if end is not None:
        signal.signal(signal.SIGALRM, backstop)
        signal.setitimer(signal.ITIMER_REAL, max(end + BACKSTOP_S - time.monotonic(), 0.001))
    try:
        run(body, rec, end, libp2p=libp2p)
    finally:
        if end is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return conclude()


# --- showing the result ------------------------------------------------------------------------


def show(verdict: Verdict, as_json: bool, trace_path: Path | None) -> int:
    """The verdict on stdout, as JSON or the terminal view: the same for a live run and `analyze`."""
    from p2pdiag.render.json import dumps, verdict_document

    trace_file = str(trace_path) if trace_path else None
    if as_json:
        print(dumps(verdict_document(verdict, trace_file)))
    else:
        if verdict.command == "relay-check":
            from p2pdiag.render.relaycheck import render
        else:
            from p2pdiag.render.terminal import render
        render(verdict, console(), trace_file)
    sys.stdout.flush()
    return int(verdict.exit_code)


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=None if stream.isatty() else PIPE_WIDTH)
