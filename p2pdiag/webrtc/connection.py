"""A WebRTC connection as trio code sees it: libp2p streams over data channels, and its state.

The aiortc session behind it lives on the bridge's asyncio thread; everything that happens there
comes back here as trace facts (recorded, then folded into `ConnectionFacts`) or as data channel
signals routed to the streams.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from p2pdiag.probes import net
from p2pdiag.trace.events import (
    CandidatePairFinal,
    Closer,
    DataChannelOpened,
    DtlsState,
    DtlsStateChanged,
    Event,
    IceChecksRefused,
    IceConnectionState,
    IceConnectionStateChanged,
    LocalCandidateGathered,
    PeerConnectionState,
    PeerConnectionStateChanged,
    RemoteCandidateReceived,
    UpgradeRole,
    WebRTCConnectionClosed,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc.bridge import Portal
from p2pdiag.webrtc.config import IceConfig
from p2pdiag.webrtc.peer import INIT_LABEL, Session
from p2pdiag.webrtc.stream import WebRTCStream

Handler = Callable[[WebRTCStream], Awaitable[None]]
NEGOTIATE_TIMEOUT_S = 10
CLOSE_TIMEOUT_S = 5.0


@dataclass
class ConnectionFacts:
    """The latest of what the trace says about this connection, for the upgrade to wait on."""

    ice: IceConnectionState = IceConnectionState.NEW
    pc: PeerConnectionState = PeerConnectionState.NEW
    dtls: DtlsState = DtlsState.NEW
    dtls_error: str | None = None
    local_candidates: int = 0
    remote_candidates: int = 0
    inbound_channels: int = 0
    init_open: bool = False
    signaling_reset: bool = False  # the remote reset the signaling stream
    pairs: int = 0
    checks_refused: IceChecksRefused | None = None  # this host refused every pair's sends: ICE cannot work


class WebRTCConnection:
    def __init__(self, connection_id: str, role: UpgradeRole, remote_peer_id: str, rec: Recorder,
                 portal: Portal) -> None:
        self.connection_id = connection_id
        self.role = role
        self.remote_peer_id = remote_peer_id
        self.facts = ConnectionFacts()
        self.established_t_s: float | None = None
        self.closed = trio.Event()
        self.streams_opened = 0
        self.streams_accepted = 0
        self._rec = rec
        self._portal = portal
        self._session: Session | None = None
        self._streams: dict[int, WebRTCStream] = {}
        self._early: dict[int, list[tuple[Any, ...]]] = {}
        self._handlers: dict[str, Handler] = {}
        self._inbound_send, self._inbound_recv = trio.open_memory_channel(math.inf)
        self._ignored: set[int] = set()
        self._changed = trio.Event()
        self._closing_by_us = False

    # --- the session ----------------------------------------------------------------------------

    async def start(self, ice: IceConfig) -> None:
        self._session = await self._portal.run(Session.create, self.connection_id, ice,
                                                self._portal.to_trio(self._on_fact),
                                                self._portal.to_trio(self._on_channel))

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the peer connection was not started")
        return self._session

    async def call(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run one of the session's coroutine methods on the asyncio thread."""
        return await self._portal.run(method, *args)

    def track_init(self, key: int) -> WebRTCStream:
        """The initiator's "init" channel: watched like a stream, never handed to a protocol."""
        stream = WebRTCStream(self, key, INIT_LABEL, inbound=False)
        self._register(stream)
        return stream

    # --- facts ----------------------------------------------------------------------------------

    def _on_fact(self, cls: type[Event], **fields: Any) -> None:
        self.observe(self._rec.record(cls, **fields))

    def observe(self, event: Event) -> None:
        f = self.facts
        if isinstance(event, IceConnectionStateChanged):
            f.ice = event.state
        elif isinstance(event, PeerConnectionStateChanged):
            f.pc = event.state
            if event.state in (PeerConnectionState.CLOSED, PeerConnectionState.FAILED):
                self._lost(f"the peer connection became {event.state.value}")
        elif isinstance(event, DtlsStateChanged):
            f.dtls, f.dtls_error = event.state, event.error
        elif isinstance(event, LocalCandidateGathered):
            f.local_candidates += 1
        elif isinstance(event, RemoteCandidateReceived):
            f.remote_candidates += int(event.accepted)
        elif isinstance(event, DataChannelOpened):
            if event.inbound:
                f.inbound_channels += 1
            elif event.label == INIT_LABEL:
                f.init_open = True
        elif isinstance(event, CandidatePairFinal):
            f.pairs += 1
        elif isinstance(event, IceChecksRefused):
            f.checks_refused = event
        self.bump()

    def bump(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[ConnectionFacts], bool]) -> None:
        while not predicate(self.facts):
            await self._changed.wait()

    # --- data channels --------------------------------------------------------------------------

    def _register(self, stream: WebRTCStream) -> None:
        self._streams[stream.key] = stream
        for signal in self._early.pop(stream.key, []):
            self._dispatch(stream, *signal)

    def _on_channel(self, kind: str, key: int, *args: Any) -> None:
        if kind == "inbound":
            label, channel_id = args
            if label == INIT_LABEL:
                self._ignored.add(key)  # only there to give the offer an SCTP section; the initiator closes it
                return
            stream = WebRTCStream(self, key, label, inbound=True)
            stream.channel_id = channel_id
            self._register(stream)
            if self.closed.is_set():
                self._close_channel(key)
                return
            self.streams_accepted += 1
            self._inbound_send.send_nowait(stream)
            return
        stream = self._streams.get(key)
        if stream is None:
            if key not in self._ignored:
                self._early.setdefault(key, []).append((kind, *args))
            return
        self._dispatch(stream, kind, *args)

    def _dispatch(self, stream: WebRTCStream, kind: str, *args: Any) -> None:
        if kind == "open":
            stream._on_open(args[0])
        elif kind == "message":
            stream._on_message(args[0])
        elif kind == "drain":
            stream._on_drain()
        elif kind == "closed":
            stream._on_channel_closed()
            self._streams.pop(stream.key, None)
            self._ignored.add(stream.key)

    async def _send(self, key: int, frames: list[bytes]) -> int:
        return await self._portal.run_sync(self.session.send, key, frames)

    def _post(self, key: int, frames: list[bytes]) -> None:
        if frames and self._session is not None:
            self._portal.post(self._session.send, key, frames)

    def _close_channel(self, key: int) -> None:
        if self._session is not None:
            self._portal.post(self._session.close_channel, key)

    # --- libp2p streams -------------------------------------------------------------------------

    async def new_stream(self) -> WebRTCStream:
        """A data channel for one libp2p stream, open; no protocol negotiated yet (like muxed streams)."""
        if self.closed.is_set():
            raise ConnectionError(f"the WebRTC connection {self.connection_id} is closed")
        key = await self._portal.run_sync(self.session.open_channel, "")
        stream = WebRTCStream(self, key, "", inbound=False)
        self._register(stream)
        await stream.wait_open()
        self.streams_opened += 1
        return stream

    async def open_stream(self, protocol: str, timeout_s: float) -> WebRTCStream:
        """A new data channel with `protocol` negotiated by multistream-select."""
        stream: WebRTCStream = await net.open_stream(self, protocol, timeout_s)
        return stream

    def set_handler(self, protocol: str, handler: Handler) -> None:
        """Inbound data channels negotiate with multistream-select, then go to the protocol's handler."""
        self._handlers[protocol] = handler

    async def serve(self) -> None:
        """Handle inbound streams until the connection closes. Run it in a nursery."""
        async with trio.open_nursery() as nursery:
            async for stream in self._inbound_recv:
                nursery.start_soon(self._handle_inbound, stream)

    async def _handle_inbound(self, stream: WebRTCStream) -> None:
        try:
            protocol, handler = await net.negotiate_inbound(stream, self._handlers, NEGOTIATE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            await stream.reset()
            net.classify(exc)  # a bug in p2pdiag goes on up; the remote's failure ends this stream only
            return
        if protocol is not None:
            stream.set_protocol(protocol)
        if handler is None:
            await stream.reset()
            return
        try:
            await handler(stream)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            await stream.reset()
            net.classify(exc)

    # --- the end --------------------------------------------------------------------------------

    def mark_established(self) -> None:
        self.established_t_s = self._rec.now()

    def _lost(self, reason: str) -> None:
        """The peer connection ended without us closing it."""
        if self.closed.is_set():
            return
        closer = Closer.LOCAL if self._closing_by_us else Closer.REMOTE
        self._end(closer, "closed by p2pdiag" if self._closing_by_us else reason)

    def _end(self, closer: Closer, reason: str) -> None:
        self.closed.set()
        for stream in list(self._streams.values()):
            stream._on_connection_lost(f"the WebRTC connection closed ({reason})")
        self._streams.clear()
        self._inbound_send.close()
        if self.established_t_s is not None:
            self._rec.record(WebRTCConnectionClosed, connection_id=self.connection_id, closer=closer, reason=reason,
                             age_s=self._rec.now() - self.established_t_s, streams_opened=self.streams_opened,
                             streams_accepted=self.streams_accepted)
        self.bump()

    async def close(self) -> None:
        if self._session is None:
            self.closed.set()
            self._inbound_send.close()
            return
        if not self.closed.is_set():
            self._closing_by_us = True
        # best-effort cleanup: whatever closing raises, the connection is over
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S), contextlib.suppress(Exception):
            await self._portal.run(self._session.close)
        if not self.closed.is_set():
            self._end(Closer.LOCAL, "closed by p2pdiag")
