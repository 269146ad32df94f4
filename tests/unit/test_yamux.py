"""p2pdiag's own yamux (probes/yamux.py) against a hand-driven peer over an in-memory stream: the
frames of the spec, and the bounds a hostile peer meets. Its interoperability is proven against real
js-libp2p and py-libp2p peers by every watch test (tests/live/test_watch_probes.py,
tests/interop/test_watch_probes_js.py)."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from p2pdiag.probes import yamux
from p2pdiag.probes.yamux import ACK, DATA, FIN, GO_AWAY, PING, RST, SYN, WINDOW_UPDATE, frame, ms

HEADER = struct.Struct(">BBHII")


class Secured:
    """The secured-connection side yamux reads and writes: whole messages from a memory stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.closed = False

    async def read(self, n=None) -> bytes:
        return await self.stream.receive_some(65536)

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def close(self) -> None:
        self.closed = True
        await self.stream.aclose()


class Peer:
    """The other end, driven by the test: reads frames, writes frames."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = b""

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def frame(self) -> tuple[int, int, int, int, bytes]:
        _, kind, flags, sid, length = HEADER.unpack(await self.read_exactly(12))
        data = await self.read_exactly(length) if kind == DATA else b""
        return kind, flags, sid, length, data

    async def answer_yamux(self) -> None:
        assert await self.read_exactly(len(ms("/multistream/1.0.0") + ms("/yamux/1.0.0"))) == (
            ms("/multistream/1.0.0") + ms("/yamux/1.0.0"))
        await self.stream.send_all(ms("/multistream/1.0.0") + ms("/yamux/1.0.0"))


def run(test, handlers=None):
    async def main():
        a, b = trio.testing.memory_stream_pair()
        peer = Peer(b)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(60):
                secured = Secured(a)
                up, _ = await _both(yamux.upgrade(secured, nursery, handlers), peer.answer_yamux())
                await test(up, peer, secured)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.01))


async def _both(x, y):
    out = [None, None]

    async def one(i, coro):
        out[i] = await coro

    async with trio.open_nursery() as n:
        n.start_soon(one, 0, x)
        n.start_soon(one, 1, y)
    return out


def test_a_stream_carries_its_syn_and_selection_on_its_first_frame_and_reads_the_answer():
    async def test(conn, peer, _):
        async def dialer():
            stream = await conn.open_selected_stream("/ipfs/id/1.0.0")
            assert await stream.read(100) == b"hello"
            await stream.close()

        async def remote():
            kind, flags, sid, _, data = await peer.frame()
            assert (kind, flags, sid) == (DATA, SYN, 1) and data == ms("/multistream/1.0.0") + ms("/ipfs/id/1.0.0")
            answer = ms("/multistream/1.0.0") + ms("/ipfs/id/1.0.0") + b"hello"
            await peer.stream.send_all(frame(WINDOW_UPDATE, ACK, 1, 0) + frame(DATA, 0, 1, len(answer), answer))
            _, flags, sid, _, _ = await peer.frame()
            assert (kind, flags & FIN, sid) == (DATA, FIN, 1)

        await _both(dialer(), remote())

    run(test)


def test_na_is_protocol_not_supported_and_the_stream_is_reset():
    from p2pdiag.probes.net import ProtocolNotSupportedError  # p2pdiag's own, named as py-libp2p's

    async def test(conn, peer, _):
        async def dialer():
            with pytest.raises(ProtocolNotSupportedError):
                await conn.open_selected_stream("/libp2p/circuit/relay/0.2.0/hop")

        async def remote():
            await peer.frame()
            answer = ms("/multistream/1.0.0") + ms("na")
            await peer.stream.send_all(frame(DATA, ACK, 1, len(answer), answer))
            _, flags, sid, _, _ = await peer.frame()
            assert flags & RST and sid == 1

        await _both(dialer(), remote())

    run(test)


def test_pings_are_answered_and_the_peers_streams_reset_without_handlers():
    async def test(conn, peer, _):
        await peer.stream.send_all(frame(PING, SYN, 0, 77) + frame(WINDOW_UPDATE, SYN, 2, 0))
        assert (await peer.frame())[:4] == (PING, ACK, 0, 77)
        _, flags, sid, _, _ = await peer.frame()
        assert flags & RST and sid == 2

    run(test)


def test_data_past_the_window_ends_the_connection_and_every_stream_with_it():
    from p2pdiag.probes.net import StreamReset

    async def test(conn, peer, secured):
        stream = await conn.new_stream()
        await stream.write(b"x")
        await peer.frame()
        chunk = b"\0" * 65536
        for _ in range(5):  # 320 KiB on a 256 KiB window, never read
            await peer.stream.send_all(frame(DATA, 0, 1, len(chunk), chunk))
        await conn.event_closed.wait()
        assert "receive window" in conn.closed_reason and secured.closed
        with pytest.raises(StreamReset):
            await stream.read(10)

    run(test)


def test_a_frame_longer_than_any_window_is_refused_before_it_is_read():
    async def test(conn, peer, secured):
        await peer.stream.send_all(HEADER.pack(0, DATA, 0, 1, 2**31))
        await conn.event_closed.wait()
        assert "past any window" in conn.closed_reason

    run(test)


def test_streams_closed_by_us_and_never_by_the_peer_are_forgotten():
    async def test(conn, peer, _):
        for _ in range(yamux.MAX_STREAMS):
            stream = await conn.new_stream()
            await stream.close()
        assert conn.open_streams == yamux.MAX_STREAMS
        await trio.sleep(yamux.HALF_CLOSED_S + 1)
        stream = await conn.new_stream()  # room again: the old ones were reset
        assert conn.open_streams == 1 and stream.stream_id == 2 * yamux.MAX_STREAMS + 1

    run(test)


def test_goaway_refuses_new_streams():
    from p2pdiag.probes.net import StreamClosed

    async def test(conn, peer, _):
        await peer.stream.send_all(frame(GO_AWAY, 0, 0, 0))
        await trio.sleep(0.1)
        with pytest.raises(StreamClosed):
            await conn.new_stream()

    run(test)


@pytest.mark.parametrize("delay_s", [0.0, 0.001, 0.01])
def test_close_racing_a_broken_peer_while_its_stream_is_served_ends_quietly(delay_s):
    """The peer's stream is being answered when the peer breaks the protocol and p2pdiag closes the
    connection at once: the reader ends with the connection, and nothing escapes to the caller
    (an exception group of the failure and a Cancelled once did, and ended all of watch)."""
    async def slow(stream):
        await trio.sleep(30)

    async def test(conn, peer, secured):
        await peer.stream.send_all(frame(WINDOW_UPDATE, SYN, 2, 0))
        await trio.sleep(0.1)  # the peer's stream is being negotiated
        await peer.stream.send_all(HEADER.pack(7, DATA, 0, 2, 0))  # a frame of an unknown version
        await trio.sleep(delay_s)
        await conn.close()
        await conn.event_closed.wait()
        await trio.sleep(1)

    run(test, handlers={"/ipfs/id/1.0.0": slow})
