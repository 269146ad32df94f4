"""A libp2p stream over one WebRTC data channel, for trio code (py-libp2p's NetStream shape).

read / write / close / reset raise py-libp2p's stream exceptions (StreamEOF, StreamReset,
StreamClosed), so multistream-select (MultiselectClient, Multiselect) and p2pdiag's own helpers
(`net.open_stream`, `net.read_exactly`, `net.classify`) work on it unchanged. The framing and
the half-close rules are `framing.StreamMachine`'s; this class moves bytes between it and the
data channel, which lives on the asyncio side behind the connection's portal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from p2pdiag.probes.net import StreamClosed, StreamEOF, StreamError, StreamReset
from p2pdiag.webrtc import framing
from p2pdiag.webrtc.framing import (
    DataReceived,
    FinAcknowledged,
    RecvState,
    RemoteFinished,
    RemoteReset,
    RemoteStoppedReading,
    StreamStateError,
)

if TYPE_CHECKING:
    from p2pdiag.webrtc.connection import WebRTCConnection

MAX_BUFFERED_BYTES = 2 * 1024 * 1024  # above this the writer waits for the channel to drain
FIN_ACK_TIMEOUT_S = 5.0  # how long close() waits for the remote to acknowledge our FIN


class WebRTCStream:
    def __init__(self, conn: WebRTCConnection, key: int, label: str, inbound: bool) -> None:
        self._conn = conn
        self.key = key
        self.label = label
        self.inbound = inbound
        self.channel_id: int | None = None
        self.muxed_conn = conn  # what py-libp2p handlers look at to tell connections apart
        self._protocol: str | None = None
        self._machine = framing.StreamMachine()
        self._decoder = framing.FrameDecoder()
        self._buffer = bytearray()
        self._changed = trio.Event()
        self._opened = inbound  # an inbound channel is open when it is announced
        self._drained = trio.Event()
        self._lost: str | None = None  # why the stream died under us (framing error, connection closed)
        self._close_requested = False

    # --- py-libp2p NetStream shape --------------------------------------------------------------

    def get_protocol(self) -> str | None:
        return self._protocol

    def set_protocol(self, protocol: str) -> None:
        self._protocol = protocol

    def get_remote_address(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"WebRTCStream({self._conn.connection_id}, channel {self.channel_id}, {self._protocol or self.label!r})"

    # --- reading --------------------------------------------------------------------------------

    async def read(self, n: int | None = None) -> bytes:
        while not self._buffer:
            if self._machine.recv is RecvState.RESET:
                raise StreamReset(self._lost or "the stream was reset")
            if self._lost is not None:
                raise StreamReset(self._lost)
            if self._machine.recv is RecvState.FIN_RECEIVED:
                raise StreamEOF("the remote closed the stream")
            if self._machine.recv is RecvState.STOP_SENT:
                raise StreamClosed("reading was closed on this side")
            await self._wait()
        size = len(self._buffer) if n is None or n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    # --- writing --------------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        if self._lost is not None:
            raise StreamReset(self._lost)
        try:
            frames = self._machine.write(data)
        except StreamStateError as exc:
            raise (StreamReset if exc.reason == "reset" else StreamClosed)(str(exc)) from None
        if not frames:
            return
        try:
            buffered = await self._conn._send(self.key, frames)
        except Exception as exc:
            raise StreamClosed(f"could not send on the data channel: {exc}") from exc
        while buffered > MAX_BUFFERED_BYTES and self._lost is None and not self._machine.channel_gone:
            self._drained = trio.Event()
            await self._drained.wait()
            buffered = 0

    async def close(self) -> None:
        """Close for writing (FIN), and wait a little for the remote's FIN_ACK, as the spec asks."""
        frames = self._machine.close_write()
        if frames:
            self._conn._post(self.key, frames)
            with trio.move_on_after(FIN_ACK_TIMEOUT_S):
                while self._machine.send is framing.SendState.FIN_SENT and not self._gone():
                    await self._wait()
        self._finish_if_done()

    async def close_read(self) -> None:
        frames = self._machine.close_read()
        if frames:
            self._conn._post(self.key, frames)
        self._buffer.clear()
        self._finish_if_done()

    async def reset(self) -> None:
        frames = self._machine.reset()
        if frames:
            self._conn._post(self.key, frames)
        self._buffer.clear()
        self._bump()
        self._finish_if_done()

    # --- from the connection (trio thread, synchronous) -----------------------------------------

    def _on_open(self, channel_id: int | None) -> None:
        self.channel_id = channel_id
        self._opened = True
        self._bump()

    def _on_message(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except framing.FramingError as exc:
            self._lose(f"the remote sent a bad frame: {exc}")
            self._conn._post(self.key, self._machine.reset())
            self._finish_if_done()
            return
        for frame in frames:
            events, replies = self._machine.receive(frame)
            if replies:
                self._conn._post(self.key, replies)
            for event in events:
                if isinstance(event, DataReceived):
                    self._buffer += event.data
                elif isinstance(event, (RemoteFinished, RemoteReset, RemoteStoppedReading, FinAcknowledged)):
                    pass  # the machine's state says it; readers and writers look there
        self._bump()
        self._finish_if_done()

    def _on_channel_closed(self) -> None:
        self._machine.channel_closed()
        self._close_requested = True
        self._drained.set()
        self._bump()

    def _on_drain(self) -> None:
        self._drained.set()

    def _on_connection_lost(self, reason: str) -> None:
        if self._machine.recv not in (RecvState.FIN_RECEIVED, RecvState.RESET):
            self._lose(reason)
        self._machine.channel_closed()
        self._drained.set()
        self._bump()

    # --- internals ------------------------------------------------------------------------------

    def _lose(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason

    def _gone(self) -> bool:
        return self._machine.channel_gone or self._lost is not None

    def _finish_if_done(self) -> None:
        if self._machine.finished and not self._close_requested:
            self._close_requested = True
            self._conn._close_channel(self.key)

    def _bump(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait(self) -> None:
        await self._changed.wait()

    async def wait_open(self) -> None:
        while not self._opened:
            if self._gone():
                raise StreamError(self._lost or "the data channel closed before it opened")
            await self._wait()
