"""One aiortc RTCPeerConnection, as the upgrade drives it (asyncio side; runs only on the bridge's thread).

It reports what happens as trace facts through `record(EventClass, **fields)`, and data channel
happenings through `channel(kind, key, *args)`; both callbacks are thread-safe functions the
bridge made. Data channels are named by a key of this session's own, since SCTP stream ids are
only assigned once the association is up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcdtlstransport import certificate_digest
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.sdp import candidate_from_sdp

from p2pdiag.probes import net
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairSelected,
    CandidatePairState,
    CandidatePairStateChanged,
    CandidateSource,
    CandidateType,
    DataChannelOpened,
    DataChannelOpenRepeated,
    DtlsRole,
    DtlsState,
    DtlsStateChanged,
    GatheringEnd,
    IceChecksRefused,
    IceConnectionState,
    IceConnectionStateChanged,
    IceGatheringEnded,
    IceGatheringState,
    IceGatheringStateChanged,
    IceRole,
    IceServerKind,
    IceServerOutcome,
    IceServerQueried,
    LocalCandidateGathered,
    PeerConnectionState,
    PeerConnectionStateChanged,
    RemoteCandidateReceived,
    RemoteCandidateRejected,
    RemoteEndOfCandidates,
    UdpSendFailed,
)
from p2pdiag.webrtc import ice, rtc
from p2pdiag.webrtc.config import IceConfig
from p2pdiag.webrtc.sdp import CandidateLine, CandidateSyntaxError, parse_sdp
from p2pdiag.webrtc.signaling import CandidateInit

Record = Callable[..., None]  # record(EventClass, **fields)
ChannelSignal = Callable[..., None]  # channel(kind, key, *args)

BUFFERED_LOW_BYTES = 256 * 1024
INIT_LABEL = "init"
logger = logging.getLogger("p2pdiag.webrtc")
STILL_RESOLVING = "its mDNS name was still being resolved when the attempt ended"


class ChannelError(net.NetworkFailure):
    """A data channel operation the channel's state does not allow (the remote closed it)."""


class RemoteDescriptionRejected(net.NetworkFailure):
    """What the remote sent (its SDP, a candidate) was refused, by p2pdiag's checks or by aiortc."""


def _refused_by_aiortc(exc: Exception) -> Exception:
    """aiortc's refusal of the remote's text, whatever its type (it raises AttributeError, KeyError,
    AssertionError on some bad SDPs), unless the exception came from p2pdiag's own code (a bug,
    returned as it is, to be raised)."""
    if net.raised_in_p2pdiag(exc):
        return exc
    return RemoteDescriptionRejected(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


class Session:
    def __init__(self, connection_id: str, ice_config: IceConfig, record: Record, channel: ChannelSignal) -> None:
        self.cid = connection_id
        self._ice_config = ice_config
        self._record = record
        self._signal = channel
        servers = [RTCIceServer(urls=url) for url in ice_config.stun[:1]]
        servers += [RTCIceServer(urls=t.url, username=t.username, credential=t.credential)
                    for t in ice_config.turn[:1]]
        policy = RTCIceTransportPolicy.RELAY if ice_config.policy == "relay" else RTCIceTransportPolicy.ALL
        ice.resolve_mdns_leniently()  # else no Chromium .local candidate ever resolves
        # iceServers is always a list, never None: with None aiortc adds a public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        self._connection: Any = None
        self._added_loopback: set[tuple[str, int]] = set()
        self._remote_fingerprints: list[tuple[str, str]] = []
        self._channels: dict[int, Any] = {}
        self._created_at: dict[int, float] = {}
        self._next_key = 1
        self._selected_reported = False
        self._closing = False
        self._bounds: tuple[float, float] | None = None  # (stun, turn) answer bounds while gathering
        self._bounded = False  # the gathering hook is installed (once)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.pc.on("iceconnectionstatechange", self._on_ice_state)
        self.pc.on("icegatheringstatechange", self._on_gathering_state)
        self.pc.on("datachannel", self._on_inbound_channel)

    @classmethod
    async def create(cls, connection_id: str, ice_config: IceConfig, record: Record,
                     channel: ChannelSignal) -> Session:
        return cls(connection_id, ice_config, record, channel)

    async def bound_gathering(self, stun_s: float, turn_s: float) -> None:
        """Wait at most `stun_s` for each STUN answer and `turn_s` for a TURN allocation while gathering."""
        self._bounds = (stun_s, turn_s)
        if self._connection is not None:  # the responder attached when it took the offer
            self._bound_gathering(self._connection)

    # --- states ---------------------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        self._record(PeerConnectionStateChanged, connection_id=self.cid,
                     state=PeerConnectionState(self.pc.connectionState))

    def _on_ice_state(self) -> None:
        state = IceConnectionState(self.pc.iceConnectionState)
        self._record(IceConnectionStateChanged, connection_id=self.cid, state=state)
        if state is IceConnectionState.COMPLETED and not self._selected_reported and self._connection is not None:
            pair = ice.selected(self._connection)
            if pair is not None:
                self._selected_reported = True
                self._record(CandidatePairSelected, connection_id=self.cid, **_pair_fields(pair),
                             ice_role=IceRole.CONTROLLING if self._connection.ice_controlling else IceRole.CONTROLLED)

    def _on_gathering_state(self) -> None:
        self._record(IceGatheringStateChanged, connection_id=self.cid,
                     state=IceGatheringState(self.pc.iceGatheringState))

    def _attach(self) -> None:
        """Hook the ICE agent and the DTLS transport, once the SCTP transport exists."""
        if self._connection is not None:
            return
        connection = rtc.ice_connection(self.pc)
        if connection is None:
            return
        self._connection = connection
        ice.watch_pairs(connection, self._on_pair)
        ice.watch_sends(connection, self._on_send_failed, self._on_checks_refused)
        if self._ice_config.host_addresses is not None:
            ice.restrict_host_addresses(connection, self._ice_config.host_addresses)
        if self._bounds is not None:
            self._bound_gathering(connection)
        if self._ice_config.loopback and self._ice_config.policy == "all":
            ice.add_loopback_on_gather(connection, lambda c: self._added_loopback.add((c.host, c.port)))
        dtls = self.pc.sctp.transport
        dtls.on("statechange", lambda: self._on_dtls_state(dtls))
        rtc.ignore_repeated_opens(self.pc.sctp, lambda stream, label: self._record(
            DataChannelOpenRepeated, connection_id=self.cid, channel_id=stream, label=label))

    def _on_pair(self, pair: ice.PairView, before: str) -> None:
        self._record(CandidatePairStateChanged, connection_id=self.cid, **_pair_fields(pair),
                     from_state=CandidatePairState[before], to_state=CandidatePairState[pair.state],
                     nominated=pair.nominated)

    def _on_send_failed(self, f: ice.SendFailure) -> None:
        self._record(UdpSendFailed, connection_id=self.cid, local_address=f.local[0], local_port=f.local[1],
                     remote_address=f.remote[0], remote_port=f.remote[1], errno_name=f.errno_name, error=f.error,
                     refused=f.refused)

    def _on_checks_refused(self, r: ice.ChecksRefused) -> None:
        self._record(IceChecksRefused, connection_id=self.cid, pairs=r.pairs, refused_pairs=r.refused_pairs,
                     unroutable_pairs=r.unroutable_pairs, sends_refused=r.sends_refused, errno_name=r.errno_name,
                     after_s=r.after_s)

    def _bound_gathering(self, connection: Any) -> None:
        if self._bounded or self._bounds is None:
            return
        self._bounded = True
        turn = self._ice_config.turn[0].url if self._ice_config.turn else None
        ice.bound_gathering(connection, _stun_servers(self._ice_config.stun), turn, *self._bounds,
                            on_query=self._on_server_query, on_end=self._on_gathered)

    def _on_server_query(self, q: ice.ServerQuery) -> None:
        self._record(IceServerQueried, connection_id=self.cid, server=q.server, server_kind=IceServerKind(q.kind),
                     local_address=q.local[0] if q.local else None, local_port=q.local[1] if q.local else None,
                     outcome=IceServerOutcome(q.outcome), mapped_address=q.mapped[0] if q.mapped else None,
                     mapped_port=q.mapped[1] if q.mapped else None, error_code=q.error_code,
                     error_reason=q.error_reason, error=q.error, duration_s=q.duration_s, bound_s=q.bound_s,
                     send_refused=q.send_refused)

    def _on_gathered(self, duration_s: float, queries: tuple[ice.ServerQuery, ...]) -> None:
        silent = [q for q in queries if q.outcome == IceServerOutcome.NO_ANSWER.value]
        self._record(IceGatheringEnded, connection_id=self.cid, duration_s=duration_s,
                     ended_by=GatheringEnd.SERVER_BOUND if silent else GatheringEnd.ALL_ANSWERED,
                     bound_s=max(q.bound_s for q in silent) if silent else None,
                     unanswered=tuple(dict.fromkeys(q.server for q in silent)))

    def _on_dtls_state(self, dtls: Any) -> None:
        state = DtlsState(dtls.state)
        if self._closing and state is not DtlsState.CLOSED:
            return  # aiortc starts DTLS on an ICE transport closed under it: not a DTLS fact
        error = self._dtls_failure(dtls) if state is DtlsState.FAILED else None
        self._record(DtlsStateChanged, connection_id=self.cid, state=state, role=DtlsRole(rtc.dtls_role(dtls)),
                     error=error)

    def _dtls_failure(self, dtls: Any) -> str:
        try:
            cert = rtc.dtls_peer_certificate(dtls)
        except Exception:  # noqa: BLE001  (OpenSSL's own error when the handshake got nowhere, or a bad certificate)
            cert = None
        if cert is None:
            return "the DTLS handshake did not complete: no certificate came from the remote"
        for algorithm, value in self._remote_fingerprints:
            try:
                if certificate_digest(cert, algorithm.lower()) != value.upper():
                    return (f"the remote's DTLS certificate does not match the {algorithm} fingerprint "
                            "in its SDP")
            except KeyError:  # a hash algorithm aiortc does not know
                continue
        return "the DTLS handshake failed after the certificates were exchanged"

    # --- offer / answer -------------------------------------------------------------------------

    async def make_offer(self) -> tuple[int, str]:
        """Create the "init" data channel (so the offer has an SCTP section), then the offer.

        Returns the init channel's key and the offer, with every local candidate in it: aiortc
        gathers them all in setLocalDescription.
        """
        key = self._open(INIT_LABEL)
        self._attach()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._report_local()
        return key, self.pc.localDescription.sdp

    async def accept_offer(self, sdp: str) -> None:
        await self._set_remote(sdp, "offer")

    async def make_answer(self) -> str:
        """The answer, with every local candidate in it (gathered in setLocalDescription)."""
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._report_local()
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self._set_remote(sdp, "answer")

    async def _set_remote(self, sdp: str, kind: str) -> None:
        facts = parse_sdp(sdp)
        self._remote_fingerprints = [tuple(f.split(None, 1)) for f in facts.fingerprints if " " in f]  # type: ignore[misc]
        if not facts.data_channel:
            raise RemoteDescriptionRejected(f"ValueError: the {kind} has no m=application section: it offers "
                                            "no data channels")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # noqa: BLE001  (aiortc refuses bad SDP with any type; bugs are raised as they are)
            raise _refused_by_aiortc(exc) from None
        self._attach()
        for text in facts.candidates:
            self._report_remote(text, CandidateSource.SDP, note_if_refused=None)
        if facts.end_of_candidates:
            self._record(RemoteEndOfCandidates, connection_id=self.cid, source=CandidateSource.SDP, data=None)

    def _report_local(self) -> None:
        if self._connection is None:
            return
        for c in self._connection.local_candidates:
            self._record(LocalCandidateGathered, connection_id=self.cid, foundation=c.foundation,
                         component=c.component, candidate_type=CandidateType(c.type), protocol=c.transport.lower(),
                         address=c.host, port=c.port, related_address=c.related_address,
                         related_port=c.related_port, priority=c.priority,
                         added_by_p2pdiag=(c.host, c.port) in self._added_loopback)

    # --- remote candidates ----------------------------------------------------------------------

    async def add_candidate(self, init: CandidateInit) -> None:
        try:
            CandidateLine.parse(init.candidate)
            body = init.candidate.strip().removeprefix("a=").removeprefix("candidate:")
            candidate = candidate_from_sdp(body)
        except (CandidateSyntaxError, AssertionError, ValueError) as exc:
            self._record(RemoteCandidateRejected, connection_id=self.cid, source=CandidateSource.TRICKLE,
                         candidate=init.candidate[:300], reason=str(exc) or "not a candidate")
            return
        candidate.sdpMid = init.sdp_mid
        candidate.sdpMLineIndex = init.sdp_mline_index
        gatherer_done = self._remote_end_seen()
        error = None
        try:
            await self.pc.addIceCandidate(candidate)
        except asyncio.CancelledError:
            # The attempt ended (often: it succeeded through a peer-reflexive candidate) while aioice
            # waited for the mDNS answer: still say that the candidate came, and what became of it.
            self._report_remote(init.candidate, CandidateSource.TRICKLE, note_if_refused=STILL_RESOLVING)
            raise
        except Exception as exc:  # e.g. no mDNS socket on this host
            refused = _refused_by_aiortc(exc)
            if not isinstance(refused, RemoteDescriptionRejected):
                raise
            error = str(refused)
        note = error or ("ignored: it came after the remote's end-of-candidates" if gatherer_done else None)
        self._report_remote(init.candidate, CandidateSource.TRICKLE, note_if_refused=note)

    async def end_of_candidates(self, data: str | None) -> None:
        self._record(RemoteEndOfCandidates, connection_id=self.cid, source=CandidateSource.TRICKLE, data=data)
        if not self._remote_end_seen():
            try:
                await self.pc.addIceCandidate(None)
            except Exception as exc:  # noqa: BLE001  (as in _set_remote: _refused_by_aiortc)
                raise _refused_by_aiortc(exc) from None

    def _remote_end_seen(self) -> bool:
        return rtc.remote_candidates_ended(self.pc)

    def _report_remote(self, text: str, source: CandidateSource, note_if_refused: str | None) -> None:
        try:
            line = CandidateLine.parse(text)
        except CandidateSyntaxError as exc:
            self._record(RemoteCandidateRejected, connection_id=self.cid, source=source, candidate=text[:300],
                         reason=str(exc))
            return
        known = None
        if self._connection is not None:
            known = next((c for c in self._connection.remote_candidates
                          if c.host == line.address and c.port == line.port), None)
        resolved = ice.resolved_address(known) if known is not None else None
        note = None
        if known is None:
            if note_if_refused:
                note = note_if_refused
            elif line.mdns:
                note = "the mDNS name did not resolve within 1 s"
            elif self._ice_config.policy == "relay" and line.candidate_type != "relay":
                note = "not used with the relay transport policy"
            else:
                note = "the ICE agent did not take it"
        self._record(RemoteCandidateReceived, connection_id=self.cid, source=source, foundation=line.foundation,
                     component=line.component, candidate_type=CandidateType(line.candidate_type),
                     protocol=line.protocol, address=line.address, port=line.port,
                     related_address=line.related_address, related_port=line.related_port,
                     priority=line.priority, mdns=line.mdns,
                     mdns_resolved=(known is not None) if line.mdns else None,
                     resolved_address=resolved if line.mdns else None,
                     accepted=known is not None, note=note)

    def report_pairs(self) -> list[str]:
        """Record every pair's final state; returns the states (aioice names)."""
        if self._connection is None:
            return []
        out = []
        for pair in ice.pairs(self._connection):
            self._record(CandidatePairFinal, connection_id=self.cid, **_pair_fields(pair),
                         state=CandidatePairState[pair.state], nominated=pair.nominated)
            out.append(pair.state)
        return out

    # --- data channels --------------------------------------------------------------------------

    def _open(self, label: str) -> int:
        channel = self.pc.createDataChannel(label)
        key = self._register(channel)
        self._created_at[key] = time.monotonic()
        return key

    def open_channel(self, label: str = "") -> int:
        return self._open(label)

    def _register(self, channel: Any) -> int:
        key = self._next_key
        self._next_key += 1
        self._channels[key] = channel
        channel.bufferedAmountLowThreshold = BUFFERED_LOW_BYTES

        @channel.on("open")
        def on_open() -> None:
            created = self._created_at.get(key)
            self._record(DataChannelOpened, connection_id=self.cid, label=channel.label, channel_id=channel.id,
                         inbound=False, duration_s=time.monotonic() - created if created is not None else None)
            self._signal("open", key, channel.id)

        @channel.on("message")
        def on_message(data: bytes | str) -> None:
            self._signal("message", key, data.encode() if isinstance(data, str) else bytes(data))

        @channel.on("close")
        def on_close() -> None:
            self._channels.pop(key, None)
            self._signal("closed", key)

        @channel.on("bufferedamountlow")
        def on_low() -> None:
            self._signal("drain", key)

        return key

    def _on_inbound_channel(self, channel: Any) -> None:
        key = self._register(channel)
        self._record(DataChannelOpened, connection_id=self.cid, label=channel.label, channel_id=channel.id,
                     inbound=True, duration_s=None)
        self._signal("inbound", key, channel.label, channel.id)
        if channel.readyState == "closed":
            self._channels.pop(key, None)
            self._signal("closed", key)

    def send(self, key: int, frames: list[bytes]) -> int:
        """Queue frames on a channel; returns the bytes still buffered there."""
        channel = self._channels.get(key)
        if channel is None or channel.readyState != "open":
            raise ChannelError(f"data channel is {'gone' if channel is None else channel.readyState}")
        for frame in frames:
            channel.send(frame)
        return channel.bufferedAmount

    def close_channel(self, key: int) -> None:
        channel = self._channels.get(key)
        if channel is not None:
            channel.close()

    async def close(self) -> None:
        self._closing = True
        await self.pc.close()


def _stun_servers(urls: tuple[str, ...]) -> list[ice.StunServer]:
    out = []
    for url in dict.fromkeys(urls):  # a server given twice is asked once
        parsed = parse_stun_turn_uri(url)
        out.append(ice.StunServer(url, parsed["host"], parsed["port"]))
    return out


def _pair_fields(pair: ice.PairView) -> dict[str, Any]:
    return {"local_address": pair.local_address, "local_port": pair.local_port,
            "local_type": CandidateType(pair.local_type), "remote_address": pair.remote_address,
            "remote_port": pair.remote_port, "remote_type": CandidateType(pair.remote_type),
            "protocol": pair.protocol}



_warming: set[asyncio.Task[None]] = set()


def warm_up() -> None:
    """Start, on this thread's loop, what aiortc does once per process (~20 ms; `upgrade.prepare`):
    OpenSSL's first key and certificate, the first RTCPeerConnection and offer. No ICE server and
    no local description, so nothing is gathered, no socket opened, nothing sent or recorded."""
    task = asyncio.ensure_future(_warm_up())
    _warming.add(task)
    task.add_done_callback(_warming.discard)


async def _warm_up() -> None:
    try:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.createDataChannel(INIT_LABEL)
            await pc.createOffer()
        finally:
            await pc.close()
    except Exception as exc:  # noqa: BLE001  (only a head start: the upgrade itself does all this again)
        logger.debug("warming aiortc up failed: %s", exc)
