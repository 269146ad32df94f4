"""Running one probe under trio with a deadline, signals and a streamed trace.

A run ends with `run.finished`, or with `run.interrupted`: Ctrl-C or SIGTERM (`signal`) or the
deadline (`budget`). Signals are noted by `p2pdiag.interrupts` from the moment p2pdiag starts;
`watch_signals` (called once the trace's header is written) makes the first one record
`run.interrupted` whenever it comes: before the body starts (the body then never does), or
while it runs (the body is cancelled). A second one exits 130 at once, `run.interrupted` in the
trace. trio is imported only when the body is about to run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable

from p2pdiag import interrupts
from p2pdiag.trace.events import InterruptReason, RunFinished, RunInterrupted
from p2pdiag.trace.recorder import Recorder

Body = Callable[[Recorder], Awaitable[None]]


def ended(rec: Recorder) -> bool:
    return any(isinstance(e, (RunFinished, RunInterrupted)) for e in rec.events)


def interrupted(rec: Recorder) -> bool:
    return any(isinstance(e, RunInterrupted) for e in rec.events)


def record_interrupt(rec: Recorder, reason: InterruptReason) -> bool:
    """`run.interrupted` once, unless the run has already ended; True if recorded now."""
    if ended(rec):
        return False
    rec.record(RunInterrupted, reason=reason)
    return True


def watch_signals(rec: Recorder) -> None:
    """From now on (and for a signal that already came) Ctrl-C and SIGTERM are recorded in REC."""
    interrupts.install()
    interrupts.watch(lambda: record_interrupt(rec, InterruptReason.SIGNAL),
                     lambda: record_interrupt(rec, InterruptReason.SIGNAL))


async def _run(body: Body, rec: Recorder, deadline: float | None) -> None:
    import trio

    body_scope = trio.CancelScope()
    token = trio.lowlevel.current_trio_token()

    def stop() -> None:
        record_interrupt(rec, InterruptReason.SIGNAL)
        body_scope.cancel()

    def on_signal() -> None:  # in the signal handler: hand it to trio, which is signal-safe
        try:
            token.run_sync_soon(stop)
        except trio.RunFinishedError:
            record_interrupt(rec, InterruptReason.SIGNAL)

    interrupts.watch(on_signal)
    try:
        if ended(rec):  # a signal came between run()'s look and now
            return
        remaining = float("inf") if deadline is None else deadline - time.monotonic()
        with body_scope:
            with trio.move_on_after(max(remaining, 0.0)) as budget:
                await body(rec)
            if budget.cancelled_caught:
                record_interrupt(rec, InterruptReason.BUDGET)
        if not ended(rec):
            rec.record(RunFinished)
    finally:
        interrupts.watch(lambda: record_interrupt(rec, InterruptReason.SIGNAL))


def quiet_libraries(libp2p: bool = True) -> None:
    """py-libp2p logs expected failures (a refused dial) to stderr; p2pdiag reports them itself.

    Its import configures the 'libp2p' logger with no handler, so Python's last-resort handler
    prints warnings. A NullHandler stops that; LIBP2P_DEBUG still works for those who want logs.
    A command that uses py-libp2p (LIBP2P) imports it here, before its body's clock starts (1.3 s a
    body's own deadlines would not count); one that does not (`dial`) never imports it: its logger
    is quieted once something does."""
    import logging

    if libp2p:
        import libp2p as _  # noqa: F401  (its import sets up the logger quieted below)
    if "libp2p" in sys.modules:
        _quiet_libp2p_logger()
    elif not any(isinstance(f, _QuietLibp2pOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietLibp2pOnImport())
    logging.getLogger("aioice").addHandler(logging.NullHandler())
    logging.getLogger("aiortc").addHandler(logging.NullHandler())


def _quiet_libp2p_logger() -> None:
    import logging
    import os

    if not os.environ.get("LIBP2P_DEBUG"):
        logger = logging.getLogger("libp2p")
        logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.CRITICAL)


class _QuietLibp2pOnImport:
    """An import hook (`sys.meta_path`) that lets `import libp2p` run as ever, then quiets its logger:
    the package's import sets the logger up, so quieting it before would be undone."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "libp2p":
            return None
        import importlib.util

        sys.meta_path.remove(self)  # once, and not for the look-up below
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_then_quiet(module: object) -> None:
            run_module(module)
            _quiet_libp2p_logger()

        loader.exec_module = exec_then_quiet
        return spec


def run(body: Body, rec: Recorder, deadline: float | None, quiet: bool = True, libp2p: bool = True) -> None:
    """Run BODY under trio until it returns, a signal comes or DEADLINE (time.monotonic()) passes.

    `watch_signals(rec)` first, so that a signal before the body starts is in the trace too."""
    if sys.platform == "win32":  # pragma: no cover
        raise RuntimeError("p2pdiag needs a POSIX system")
    interrupts.install()
    if ended(rec):  # interrupted before it began: the body never starts
        return
    if quiet:
        quiet_libraries(libp2p)
    if deadline is not None and time.monotonic() >= deadline:
        record_interrupt(rec, InterruptReason.BUDGET)
        return
    if ended(rec):
        return
    import trio

    trio.run(_run, body, rec, deadline)
