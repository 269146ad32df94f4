"""The trio <-> asyncio bridge: calls, order, cancellation, callbacks."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from p2pdiag.webrtc.bridge import AsyncioThread, Portal


def test_calls_run_on_the_asyncio_thread_and_return_or_raise():
    async def main() -> None:
        portal = Portal()

        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert await portal.run(where) == "p2pdiag-asyncio"
        assert await portal.run_sync(lambda: threading.current_thread().name) == "p2pdiag-asyncio"

        async def boom() -> None:
            raise ValueError("from asyncio")

        with pytest.raises(ValueError, match="from asyncio"):
            await portal.run(boom)

    trio.run(main)


def test_sync_calls_and_posts_keep_their_order():
    log: list[int] = []

    async def main() -> None:
        portal = Portal()
        for i in range(50):
            if i % 2:
                portal.post(log.append, i)
            else:
                await portal.run_sync(log.append, i)
        await portal.run_sync(lambda: None)

    trio.run(main)
    assert log == list(range(50))


def test_trio_does_not_block_while_waiting_and_cancellation_reaches_asyncio():
    cancelled = threading.Event()

    async def main() -> None:
        portal = Portal()

        async def forever() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await trio.sleep(0.01)
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            with trio.move_on_after(0.2):
                await portal.run(forever)
            nursery.cancel_scope.cancel()
        assert ticks >= 5  # trio kept running while the asyncio call was pending
        await trio.to_thread.run_sync(cancelled.wait, 2)

    trio.run(main)
    assert cancelled.is_set()


def test_callbacks_reach_trio_in_order_and_errors_do_not_end_the_run(caplog):
    got: list[int] = []

    async def main() -> None:
        portal = Portal()
        deliver = portal.to_trio(got.append)
        fail = portal.to_trio(lambda: 1 / 0)

        def from_asyncio() -> None:
            for i in range(20):
                deliver(i)
                if i == 10:
                    fail()

        await portal.run_sync(from_asyncio)
        await trio.sleep(0.05)

    trio.run(main)
    assert got == list(range(20))
    assert "callback" in caplog.text


def test_one_loop_serves_successive_trio_runs():
    loops = []

    async def main() -> None:
        loops.append(await Portal().run_sync(asyncio.get_running_loop))

    trio.run(main)
    trio.run(main)
    assert loops[0] is loops[1] is AsyncioThread.get().loop
