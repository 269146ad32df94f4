"""Running one probe under trio with a budget, signals and a streamed trace."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable

import trio

from p2pdiag.trace.events import InterruptReason, RunFinished, RunInterrupted
from p2pdiag.trace.recorder import Recorder

Body = Callable[[Recorder], Awaitable[None]]


async def _run(body: Body, rec: Recorder, budget_s: float | None) -> None:
    interrupted: list[InterruptReason] = []
    async with trio.open_nursery() as nursery:

        async def on_signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if interrupted:
                        # A second Ctrl-C while cleaning up: the trace is already flushed.
                        os._exit(130)
                    interrupted.append(InterruptReason.SIGNAL)
                    rec.record(RunInterrupted, reason=InterruptReason.SIGNAL)
                    body_scope.cancel()

        body_scope = trio.CancelScope()
        nursery.start_soon(on_signals)
        with body_scope:
            with trio.move_on_after(budget_s if budget_s else float("inf")) as budget:
                await body(rec)
            if budget.cancelled_caught:
                interrupted.append(InterruptReason.BUDGET)
                rec.record(RunInterrupted, reason=InterruptReason.BUDGET)
        if not interrupted:
            rec.record(RunFinished)
        nursery.cancel_scope.cancel()


def quiet_libraries() -> None:
    """py-libp2p logs expected failures (a refused dial) to stderr; p2pdiag reports them itself.

    Its import configures the 'libp2p' logger with no handler, so Python's last-resort handler
    prints warnings. A NullHandler stops that; LIBP2P_DEBUG still works for those who want logs.
    """
    import logging
    import os

    import libp2p  # noqa: F401  (its import sets up the logger we adjust)

    if not os.environ.get("LIBP2P_DEBUG"):
        logger = logging.getLogger("libp2p")
        logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.CRITICAL)
    logging.getLogger("aioice").addHandler(logging.NullHandler())
    logging.getLogger("aiortc").addHandler(logging.NullHandler())


def run(body: Body, rec: Recorder, budget_s: float | None) -> None:
    quiet_libraries()
    if sys.platform != "win32":
        trio.run(_run, body, rec, budget_s)
    else:  # pragma: no cover
        raise RuntimeError("p2pdiag needs a POSIX system")
