"""CircuitStream tells an end from below (the relay's stream failed or ended) from a close from above."""

from __future__ import annotations

import trio
import trio.testing

from p2pdiag.probes.circuit import CircuitStream
from p2pdiag.trace.events import Closer
from p2pdiag.trace.recorder import Recorder


class _Stream:
    """A byte stream with the read/write/close shape of a py-libp2p stream, over a real trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._s = stream

    async def read(self, n: int) -> bytes:
        return await self._s.receive_some(n)

    async def write(self, data: bytes) -> None:
        await self._s.send_all(data)

    async def close(self) -> None:
        await self._s.aclose()


def test_py_libp2p_closing_the_raw_connection_is_not_an_end_from_below():
    # After a failed Noise handshake py-libp2p closes the raw connection: a REMOTE end, from above,
    # which must not be recorded as circuit.closed(remote).
    async def main() -> None:
        ours, _theirs = trio.testing.memory_stream_pair()
        stream = CircuitStream(_Stream(ours), Recorder())
        await stream.close()
        assert stream.ended.is_set() and stream.end_closer is Closer.REMOTE
        assert not stream.ended_from_below

    trio.run(main)


def test_the_relay_ending_the_stream_is_an_end_from_below():
    async def main() -> None:
        ours, theirs = trio.testing.memory_stream_pair()
        stream = CircuitStream(_Stream(ours), Recorder())
        await theirs.aclose()
        assert await stream.read(10) == b""
        assert stream.ended.is_set() and stream.ended_from_below
        await stream.close()  # the close that follows does not change it
        assert stream.ended_from_below

    trio.run(main)
