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


def run(body: Body, rec: Recorder, budget_s: float | None) -> None:
    # py-libp2p logs at WARNING on expected failures (a refused dial); p2pdiag reports them itself.
    import logging

    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    if sys.platform != "win32":
        trio.run(_run, body, rec, budget_s)
    else:  # pragma: no cover
        raise RuntimeError("p2pdiag needs a POSIX system")
