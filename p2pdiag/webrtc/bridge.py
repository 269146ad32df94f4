"""The one place where asyncio (aiortc, aioice) meets trio (py-libp2p, the probes).

aiortc runs on an asyncio event loop in one dedicated daemon thread, shared by every upgrade in
the process. Trio code never touches an aiortc object: it holds a `Portal`, and

- `await portal.run(coro_fn, *args)` runs a coroutine function on the asyncio thread and waits
  for it without blocking trio; cancelling the trio side cancels the asyncio task;
- `await portal.run_sync(fn, *args)` and `portal.post(fn, *args)` run a plain function there, in
  call order (both go through the loop's FIFO `call_soon_threadsafe` queue);
- `portal.to_trio(fn)` gives a function the asyncio side may call from its thread: `fn(...)`
  then runs in the trio run, in call order, through its `TrioToken`.

Code on the asyncio side is plain asyncio and knows nothing of trio; it gets such functions as
callbacks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from p2pdiag.probes.net import NetworkFailure

T = TypeVar("T")

logger = logging.getLogger("p2pdiag.webrtc")


class AsyncioSideCancelled(NetworkFailure):
    """The asyncio side cancelled a call trio was waiting for (e.g. its peer connection closed)."""


class AsyncioThread:
    """An asyncio event loop running forever in a daemon thread; one per process."""

    _instance: AsyncioThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(started,), name="p2pdiag-asyncio", daemon=True)
        self._thread.start()
        started.wait()

    def _main(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> AsyncioThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


def _guarded(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # A callback runs in trio's system context, where an exception would end the whole run.
    try:
        fn(*args)
    except Exception:
        logger.exception("callback %r from the asyncio side failed", fn)


class Portal:
    """Made inside a trio run; valid for that run."""

    def __init__(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._loop = AsyncioThread.get().loop

    def _soon_in_trio(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the trio run ended: nobody is left to tell
            self._token.run_sync_soon(_guarded, fn, args)

    async def _wait(self, future: concurrent.futures.Future[T]) -> T:
        done = trio.Event()
        future.add_done_callback(lambda _: self._soon_in_trio(done.set))
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise AsyncioSideCancelled("the call was cancelled on the asyncio side") from None

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def invoke() -> T:
            return await fn(*args)

        return await self._wait(asyncio.run_coroutine_threadsafe(invoke(), self._loop))

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def invoke() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001  (handed to the waiting trio side, which raises it)
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(invoke)
        return await self._wait(future)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the asyncio thread without waiting; failures are logged only."""

        def invoke() -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001  (fire and forget on the asyncio thread: no caller to raise to)
                logger.debug("posted call %r failed: %s", fn, exc)

        self._loop.call_soon_threadsafe(invoke)

    def to_trio(self, fn: Callable[..., Any]) -> Callable[..., None]:
        """A thread-safe function for the asyncio side: each call runs `fn(...)` in trio, in order."""

        def deliver(*args: Any, **kwargs: Any) -> None:
            self._soon_in_trio(functools.partial(fn, *args, **kwargs))

        return deliver
