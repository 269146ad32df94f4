"""A small yamux of p2pdiag's own, for the short connections `watch` opens by the thousand.

A probe connection of py-libp2p's swarm cost about 15 ms of CPU before its first stream
(measured against a js-libp2p node on loopback: TCP 2 ms, Noise 3.6 ms, the rest the swarm's
bookkeeping and py-libp2p's yamux: a window update after every read, a round-trip-time ping loop,
notifiees, an inbound stream handler), and identify on it 12 ms more; watch at 200 targets opens
about 20 connections a second. Here the connection is dialed by py-libp2p's transport and secured
by its Noise (both public parts, and the peer id is verified there); multistream-select picks
`/yamux/1.0.0` and this module multiplexes: streams opened by p2pdiag (identify, HOP, ping), the
peer's pings answered, the peer's own streams negotiated with `handlers` (identify) or reset.

The streams raise py-libp2p's stream exceptions (StreamEOF, StreamReset, StreamClosed), so
`net.classify` names their failures as it names py-libp2p's. Everything a peer can make it hold is
bounded: a stream's unread data by its receive window (a peer sending past it is a protocol
violation: the connection is closed), the streams open at once by MAX_STREAMS (the peer's extra
ones are reset), a frame by the window, inbound negotiations by `negotiate_timeout_s`.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from p2pdiag.probes import net

YAMUX_PROTOCOL = "/yamux/1.0.0"
MULTISTREAM_PROTOCOL = net.MULTISTREAM_PROTOCOL
NOISE_PROTOCOL = "/noise"
HEADER = struct.Struct(">BBHII")  # version, type, flags, stream id, length
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8
INITIAL_WINDOW = 256 * 1024  # yamux's, in each direction of each stream
MAX_FRAME_DATA = 16 * 1024  # what one data frame of ours carries
MAX_STREAMS = 16  # open at once, both directions (each may buffer up to its window)
MAX_NEGOTIATION_BYTES = net.MAX_NEGOTIATION_BYTES  # a multistream-select message
HALF_CLOSED_S = 10.0  # a stream we closed and the peer did not: reset and forgotten after this long

Handler = Callable[[Any], Awaitable[None]]


class YamuxError(net.NetworkFailure):
    """The peer broke the yamux protocol."""


ms = net.multistream_message
select = net.select  # multistream-select as the dialer, header and protocol in one write


def frame(kind: int, flags: int, stream_id: int, length: int, data: bytes = b"") -> bytes:
    return HEADER.pack(0, kind, flags, stream_id, length) + data


class YamuxStream:
    """One stream: read, write, close (our half), reset, as py-libp2p's streams."""

    def __init__(self, conn: YamuxConnection, stream_id: int) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self._buffer = bytearray()
        self._recv_window = INITIAL_WINDOW  # what the peer may still send before our next window update
        self._consumed = 0  # read since our last window update
        self._send_window = INITIAL_WINDOW
        self._changed = trio.lowlevel.ParkingLot()
        self.remote_closed = False  # the peer sent FIN
        self.local_closed = False
        self.reset_by: str | None = None  # "remote", "local", "connection", "connection-eof" (it ended under it)
        self.protocol: str | None = None
        self._syn = SYN if conn.owns(stream_id) else 0  # our stream's SYN rides on its first frame
        self.closed_at = 0.0

    def set_protocol(self, protocol: str) -> None:
        self.protocol = protocol

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._conn.remote_address

    # what the connection's reader delivers
    def _data(self, data: bytes) -> None:
        if len(data) > self._recv_window:
            raise YamuxError(f"stream {self.stream_id}: {len(data)} bytes sent past its receive window")
        self._recv_window -= len(data)
        self._buffer += data
        self._changed.unpark_all()

    def _window(self, delta: int) -> None:
        self._send_window += delta
        self._changed.unpark_all()

    def _remote_fin(self) -> None:
        self.remote_closed = True
        self._changed.unpark_all()

    def _reset(self, by: str) -> None:
        if self.reset_by is None:
            self.reset_by = by
        self._changed.unpark_all()

    async def read(self, n: int | None = None) -> bytes:
        if self.reset_by is not None and self.reset_by != "connection-eof":  # what was buffered goes with it
            raise net.library_error("StreamReset", f"stream reset ({self.reset_by})")
        while not self._buffer:
            if self.reset_by is not None and self.reset_by != "connection-eof":
                raise net.library_error("StreamReset", f"stream reset ({self.reset_by})")
            if self.remote_closed or self.reset_by == "connection-eof":
                raise net.library_error("StreamEOF", "end of stream")
            await self._changed.park()
        take = len(self._buffer) if n is None or n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        self._consumed += take
        if self._consumed >= INITIAL_WINDOW // 2 and not self.remote_closed and self.reset_by is None:
            delta, self._consumed = self._consumed, 0
            self._recv_window += delta
            await self._conn.send(frame(WINDOW_UPDATE, 0, self.stream_id, delta))
        return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.reset_by is not None:
                raise net.library_error("StreamReset", f"stream reset ({self.reset_by})")
            if self.local_closed:
                raise net.library_error("StreamClosed", "write after close")
            if self._send_window <= 0:
                await self._changed.park()
                continue
            n = min(len(view), self._send_window, MAX_FRAME_DATA)
            self._send_window -= n
            flags, self._syn = self._syn, 0
            await self._conn.send(frame(DATA, flags, self.stream_id, n, bytes(view[:n])))
            view = view[n:]

    async def close(self) -> None:
        """Our half: FIN. The stream is forgotten once both halves are closed or it was reset."""
        if self.local_closed or self.reset_by is not None:
            return
        self.local_closed = True
        self.closed_at = trio.current_time()
        flags, self._syn = self._syn | FIN, 0
        try:
            await self._conn.send(frame(DATA, flags, self.stream_id, 0))
        finally:
            self._conn._settle(self)

    async def reset(self) -> None:
        if self.reset_by is not None:
            return
        self._reset("local")
        self._conn._settle(self)
        if not self._syn:  # a stream the peer never heard of needs no RST
            await self._conn.send(frame(WINDOW_UPDATE, RST, self.stream_id, 0))


class YamuxConnection:
    """A secured connection multiplexed by yamux, as the dialer. `run` must be running (in a nursery)."""

    def __init__(self, secured: Any, *, handlers: Mapping[str, Handler] | None = None,
                 negotiate_timeout_s: float = 5.0, remote_address: tuple[str, int] | None = None) -> None:
        self.secured = secured
        self.remote_address = remote_address
        self._handlers = dict(handlers or {})
        self._negotiate_timeout_s = negotiate_timeout_s
        self._streams: dict[int, YamuxStream] = {}
        self._next_id = 1  # the dialer's streams are odd
        self._send_lock = trio.Lock()
        self._received = _Received(secured)
        self._scope = trio.CancelScope()
        self.event_closed = trio.Event()
        self.closed_reason = ""
        self._go_away = False

    # --- what net.negotiated and the probes ask of a connection ----------------------------
    def get_negotiated_security_protocol(self) -> str:
        return NOISE_PROTOCOL

    def get_negotiated_muxer_protocol(self) -> str:
        return YAMUX_PROTOCOL

    @property
    def is_closed(self) -> bool:
        return self.event_closed.is_set()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def negotiate(self) -> None:
        """multistream-select for /yamux/1.0.0."""
        try:
            await select(self._received, YAMUX_PROTOCOL)
        except Exception as exc:
            if not net.is_network_failure(exc):
                raise
            raise net.library_error("MuxerUpgradeFailure", f"negotiating {YAMUX_PROTOCOL}: {exc}") from exc

    async def _read_exactly(self, n: int) -> bytes:
        return await net.read_exactly(self._received, n)

    async def send(self, data: bytes) -> None:
        if self.event_closed.is_set():
            raise net.library_error("StreamClosed", f"the connection is closed ({self.closed_reason})")
        async with self._send_lock:
            await self.secured.write(data)

    async def new_stream(self) -> YamuxStream:
        if self.event_closed.is_set() or self._go_away:
            raise net.library_error("StreamClosed", "the connection is closed" if self.event_closed.is_set()
                                else "the peer sent GoAway: no new streams")
        await self._forget_half_closed()
        if len(self._streams) >= MAX_STREAMS:
            raise net.library_error("StreamClosed", f"{MAX_STREAMS} streams already open on this connection")
        stream = YamuxStream(self, self._next_id)
        self._next_id += 2
        self._streams[stream.stream_id] = stream
        return stream

    async def open_selected_stream(self, protocol: str) -> YamuxStream:
        """A new stream with PROTOCOL selected (net.open_stream uses it): its SYN, the
        multistream-select header and the protocol in one frame."""
        stream = await self.new_stream()
        try:
            await select(stream, protocol)
        except BaseException:
            with trio.CancelScope(shield=True):
                await net.reset_quietly(stream)
            raise
        stream.set_protocol(protocol)
        return stream

    async def _forget_half_closed(self) -> None:
        """On a long-lived connection (watch's link to a relay), streams we closed that the peer
        never closed would pile up: after HALF_CLOSED_S they are reset."""
        stale = trio.current_time() - HALF_CLOSED_S
        for stream in [s for s in self._streams.values() if s.local_closed and s.closed_at < stale]:
            stream._reset("local")
            self._settle(stream)
            await self.send(frame(WINDOW_UPDATE, RST, stream.stream_id, 0))

    def owns(self, stream_id: int) -> bool:
        """Whether STREAM_ID is of the ids this side opens (odd for the dialer)."""
        return stream_id % 2 == self._next_id % 2

    def _settle(self, stream: YamuxStream) -> None:
        if stream.reset_by is not None or (stream.local_closed and stream.remote_closed):
            self._streams.pop(stream.stream_id, None)

    # --- the reader ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Read frames until the connection ends or `close`; then every stream ends too."""
        # The reader's own failure is caught inside the nursery, not around it: there it would come
        # wrapped in an exception group, with a Cancelled beside it when `close` raced the peer's reset.
        with self._scope:
            async with trio.open_nursery() as handlers:  # the peer's streams being answered
                try:
                    await self._read_frames(handlers)
                except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
                    kind, message = net.classify(exc)
                    # a clean end leaves what arrived readable (an answer, then the peer closed); any other drops it
                    self._end(f"{kind.value}: {message}", "connection-eof" if kind.value == "closed" else "connection")
                    handlers.cancel_scope.cancel()
                    with trio.CancelScope(shield=True):
                        await net.close_quietly(self.secured)
                    return
        self._end("closed by p2pdiag", "connection")

    async def _read_frames(self, nursery: trio.Nursery) -> None:
        while True:
            version, kind, flags, stream_id, length = HEADER.unpack(await self._read_exactly(HEADER.size))
            if version != 0 or kind > GO_AWAY:
                raise YamuxError(f"yamux frame of version {version}, type {kind}")
            if kind == PING:
                if flags & SYN:
                    await self.send(frame(PING, ACK, 0, length))
                continue
            if kind == GO_AWAY:
                self._go_away = True
                continue
            data = b""
            if kind == DATA:
                if length > INITIAL_WINDOW:
                    raise YamuxError(f"a data frame of {length} bytes, past any window")
                data = await self._read_exactly(length)
            stream = self._streams.get(stream_id)
            if flags & SYN and stream is None:
                stream = await self._accept(stream_id, nursery)
                if stream is None:
                    continue
            if stream is None:
                continue  # a frame for a stream already forgotten (reset, or closed both ways)
            if kind == WINDOW_UPDATE:
                stream._window(length)
            elif data:
                stream._data(data)
            if flags & RST:
                stream._reset("remote")
                self._settle(stream)
            elif flags & FIN:
                stream._remote_fin()
                self._settle(stream)

    async def _accept(self, stream_id: int, nursery: trio.Nursery) -> YamuxStream | None:
        if self.owns(stream_id) or not self._handlers or len(self._streams) >= MAX_STREAMS:
            await self.send(frame(WINDOW_UPDATE, RST, stream_id, 0))  # not the peer's id to open, or no room
            return None
        stream = YamuxStream(self, stream_id)
        self._streams[stream_id] = stream
        await self.send(frame(WINDOW_UPDATE, ACK, stream_id, 0))
        nursery.start_soon(self._serve, stream)
        return stream

    async def _serve(self, stream: YamuxStream) -> None:
        try:
            with trio.fail_after(self._negotiate_timeout_s):  # negotiation and answer: a peer that stops reading
                protocol, handler = await net.negotiate_inbound(stream, self._handlers, self._negotiate_timeout_s)
                stream.set_protocol(protocol)
                await handler(stream)
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            net.classify(exc)  # the peer asked for a protocol we do not answer, or went away: reset it
            await net.reset_quietly(stream)

    def _end(self, reason: str, how: str) -> None:
        if self.event_closed.is_set():
            return
        self.closed_reason = reason
        self.event_closed.set()
        for stream in list(self._streams.values()):
            stream._reset(how)
        self._streams.clear()

    async def close(self) -> None:
        """GoAway, then the secured connection closed; the reader stops."""
        if not self.event_closed.is_set():
            try:
                with trio.move_on_after(1):
                    await self.send(frame(GO_AWAY, 0, 0, 0))
            except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
                net.classify(exc)  # the connection ended meanwhile: nothing to say goodbye on
        self._end("closed by p2pdiag", "connection")
        self._scope.cancel()
        await net.close_quietly(self.secured)


class _Received:
    """What the secured connection delivered, read as asked: one read of it is one Noise message."""

    def __init__(self, secured: Any) -> None:
        self.secured = secured
        self._buffer = bytearray()

    async def read(self, n: int) -> bytes:
        if not self._buffer:
            chunk = await self.secured.read(None)
            if not chunk:
                raise net.library_error("StreamEOF", "the connection ended")
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def write(self, data: bytes) -> None:
        await self.secured.write(data)


class ReadAhead:
    """A raw connection whose reads take what has arrived (up to READ_AHEAD_BYTES) and hand it out as
    asked: Noise reads each message's 2-byte length, then its body, and py-libp2p's TCP stream makes
    each read a system call."""

    READ_AHEAD_BYTES = 65536

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._buffer = b""
        self._at = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    async def read(self, n: int | None = None) -> bytes:
        if self._at >= len(self._buffer):
            self._buffer, self._at = await self._raw.read(self.READ_AHEAD_BYTES), 0
            if not self._buffer:
                return b""
        end = len(self._buffer) if n is None or n < 0 else min(len(self._buffer), self._at + n)
        out = self._buffer[self._at:end]
        self._at = end
        return out

    async def write(self, data: bytes) -> None:
        await self._raw.write(data)

    async def close(self) -> None:
        await self._raw.close()


async def upgrade(secured: Any, nursery: trio.Nursery, handlers: Mapping[str, Handler] | None = None,
                  remote_address: tuple[str, int] | None = None) -> YamuxConnection:
    """Negotiate yamux on a secured connection and start its reader in NURSERY."""
    conn = YamuxConnection(secured, handlers=handlers, remote_address=remote_address)
    await conn.negotiate()
    nursery.start_soon(conn.run)
    return conn
