"""Trace events: immutable facts recorded by the probes, judged later by diagnosis.

Every event has `t_s`, seconds since the run began on a monotonic clock. Names are past tense,
units are in field names, states and codes are enums. Each class is registered under its
`kind`, the value of the `type` key in the trace file (docs/trace-format.md lists them).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any, ClassVar


class Subject(enum.Enum):
    RELAY = "relay"
    PEER = "peer"


class Path(enum.Enum):
    """Which connection a ping or stream went over."""

    RELAYED = "relayed"
    WEBRTC = "webrtc"


class ErrorKind(enum.Enum):
    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    RESET = "reset"
    CLOSED = "closed"
    MALFORMED = "malformed"
    PROTOCOL_UNSUPPORTED = "protocol_unsupported"
    PEER_ID_MISMATCH = "peer_id_mismatch"
    SECURITY_FAILED = "security_failed"
    MUXER_FAILED = "muxer_failed"
    OTHER = "other"


class Closer(enum.Enum):
    """Who ended a relayed connection, as far as the probe could tell."""

    LOCAL = "local"  # p2pdiag closed it at the end of the run
    REMOTE = "remote"  # the peer closed the secured session cleanly
    RELAY = "relay"  # the relay reset or ended the circuit stream under the session
    UNKNOWN = "unknown"


class DialMethod(enum.Enum):
    MULTIADDR = "multiaddr"  # a full .../p2p-circuit/... address
    PEER_ID = "peer_id"  # a peer id plus --relay addresses


class InterruptReason(enum.Enum):
    SIGNAL = "signal"  # Ctrl-C or SIGTERM
    BUDGET = "budget"  # the overall --timeout ran out


EVENT_TYPES: dict[str, type[Event]] = {}


def _register(kind: str) -> typing.Callable[[type[E]], type[E]]:
    def wrap(cls: type[E]) -> type[E]:
        cls.kind = kind
        EVENT_TYPES[kind] = cls
        return cls

    return wrap


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    t_s: float
    kind: ClassVar[str] = "event"


E = typing.TypeVar("E", bound=Event)


# --- the dial target -------------------------------------------------------------------------


@_register("target.resolved")
@dataclass(frozen=True, slots=True, kw_only=True)
class TargetResolved(Event):
    peer_id: str
    relays: tuple[str, ...]
    method: DialMethod
    webrtc_requested: bool


# --- the connection to a relay ---------------------------------------------------------------


@_register("relay.dial_started")
@dataclass(frozen=True, slots=True, kw_only=True)
class RelayDialStarted(Event):
    relay: str
    relay_peer_id: str
    transport: str  # "tcp" or "ws"


@_register("relay.connected")
@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConnected(Event):
    relay: str
    security: str | None
    muxer: str | None
    duration_s: float


@_register("relay.dial_failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RelayDialFailed(Event):
    relay: str
    error_kind: ErrorKind
    error: str
    duration_s: float


@_register("identify.completed")
@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifyCompleted(Event):
    subject: Subject
    peer_id: str
    connection_id: str
    agent_version: str | None
    protocol_version: str | None
    protocols: tuple[str, ...]
    observed_addr: str | None
    listen_addrs: tuple[str, ...]
    duration_s: float


@_register("identify.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifyFailed(Event):
    subject: Subject
    peer_id: str
    connection_id: str
    error_kind: ErrorKind
    error: str
    duration_s: float


# --- HOP (dialer) and RESERVE / STOP (listener) ----------------------------------------------


@_register("hop.connect_sent")
@dataclass(frozen=True, slots=True, kw_only=True)
class HopConnectSent(Event):
    relay: str
    target_peer_id: str


@_register("hop.status_received")
@dataclass(frozen=True, slots=True, kw_only=True)
class HopStatusReceived(Event):
    """The relay's answer to CONNECT. Limit values are as announced (the spec's unit: seconds)."""

    relay: str
    status_code: int | None
    status_name: str
    announced_duration_s: int | None
    announced_data_bytes: int | None
    duration_s: float


@_register("hop.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class HopFailed(Event):
    relay: str
    stage: str  # "negotiate", "write", "read" or "decode"
    error_kind: ErrorKind
    error: str
    duration_s: float


@_register("reservation.accepted")
@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationAccepted(Event):
    relay: str
    expire_unix_s: int | None
    addrs: tuple[str, ...]
    voucher_bytes: int
    announced_duration_s: int | None
    announced_data_bytes: int | None
    refresh: bool
    duration_s: float
    voucher_hex: str = ""  # the signed envelope, so its checks can be redone offline


@_register("reservation.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationFailed(Event):
    relay: str
    status_code: int | None
    status_name: str
    error_kind: ErrorKind | None
    error: str
    refresh: bool
    duration_s: float


@_register("stop.connect_received")
@dataclass(frozen=True, slots=True, kw_only=True)
class StopConnectReceived(Event):
    relay_peer_id: str
    source_peer_id: str
    connection_id: str
    announced_duration_s: int | None
    announced_data_bytes: int | None


# --- the relayed connection ------------------------------------------------------------------


@_register("circuit.secured")
@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitSecured(Event):
    """Noise + muxer negotiated over the circuit: the relayed connection exists."""

    connection_id: str
    relay: str
    remote_peer_id: str
    inbound: bool
    security: str | None
    muxer: str | None
    duration_s: float


@_register("circuit.upgrade_failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitUpgradeFailed(Event):
    connection_id: str
    relay: str
    error_kind: ErrorKind
    error: str
    duration_s: float


@_register("circuit.traffic")
@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitTraffic(Event):
    """Bytes carried by the circuit stream so far, all protocol overhead included."""

    connection_id: str
    bytes_sent: int
    bytes_received: int
    age_s: float


@_register("circuit.closed")
@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitClosed(Event):
    connection_id: str
    closer: Closer
    reason: str
    bytes_sent: int
    bytes_received: int
    age_s: float


@_register("ping.completed")
@dataclass(frozen=True, slots=True, kw_only=True)
class PingCompleted(Event):
    path: Path
    connection_id: str
    rtt_s: float


@_register("ping.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class PingFailed(Event):
    path: Path
    connection_id: str
    error_kind: ErrorKind
    error: str


@_register("ping.served")
@dataclass(frozen=True, slots=True, kw_only=True)
class PingServed(Event):
    """The answering side echoed a ping on this connection."""

    connection_id: str
    count: int


# --- the run ---------------------------------------------------------------------------------


@_register("step.timed_out")
@dataclass(frozen=True, slots=True, kw_only=True)
class StepTimedOut(Event):
    step: str
    timeout_s: float
    relay: str | None = None  # the relay whose check or connection the step was for (relay-check: which relay)


@_register("upgrade.not_attempted")
@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeNotAttempted(Event):
    reason: str


@_register("hold.started")
@dataclass(frozen=True, slots=True, kw_only=True)
class HoldStarted(Event):
    connection_id: str
    hold_s: float
    ping_interval_s: float


@_register("run.interrupted")
@dataclass(frozen=True, slots=True, kw_only=True)
class RunInterrupted(Event):
    reason: InterruptReason


@_register("run.finished")
@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    pass


# --- the WebRTC upgrade ----------------------------------------------------------------------
# (libp2p/specs webrtc/webrtc.md: private-to-private over a relayed connection). State names follow
# the W3C WebRTC enums and aioice's CandidatePair.State; "connection_id" is the WebRTC connection
# ("webrtc-1"), "relayed_connection_id" the relayed connection that carried the signaling.


class UpgradeRole(enum.Enum):
    INITIATOR = "initiator"  # opened the signaling stream and sent the offer (the dialer)
    RESPONDER = "responder"  # answered (the listener)


class IcePolicy(enum.Enum):
    """RTCIceTransportPolicy."""

    ALL = "all"  # every candidate type
    RELAY = "relay"  # only TURN (relay) candidates


class UpgradeStep(enum.Enum):
    """The step an upgrade attempt reached, in order."""

    SIGNALING = "signaling"  # the /webrtc-signaling/0.0.1 stream itself
    OFFER = "offer"  # the SDP offer: created, sent, read or applied
    ANSWER = "answer"  # the SDP answer: created, sent, read or applied
    GATHERING = "gathering"  # local ICE candidates
    ICE = "ice"  # connectivity checks
    DTLS = "dtls"  # the DTLS handshake over the selected pair
    CHANNEL = "channel"  # SCTP association and the first data channel


class SignalingMessageType(enum.Enum):
    SDP_OFFER = "SDP_OFFER"  # type 0
    SDP_ANSWER = "SDP_ANSWER"  # type 1
    ICE_CANDIDATE = "ICE_CANDIDATE"  # type 2: a candidate or end-of-candidates


class SignalingStage(enum.Enum):
    OPEN = "open"  # opening the stream / negotiating the protocol
    WRITE = "write"  # writing a message failed
    READ = "read"  # no message came: timeout, reset, end of stream
    DECODE = "decode"  # bytes arrived but are not a valid message
    UNEXPECTED = "unexpected"  # a valid message of the wrong type
    APPLY = "apply"  # the local WebRTC stack rejected the remote SDP or candidate


class CandidateType(enum.Enum):
    HOST = "host"  # an address of a local interface
    SRFLX = "srflx"  # the address a STUN server saw (server reflexive)
    PRFLX = "prflx"  # an address learned from a connectivity check (peer reflexive)
    RELAY = "relay"  # an address on a TURN server


class CandidateSource(enum.Enum):
    SDP = "sdp"  # an a=candidate line of the offer or answer
    TRICKLE = "trickle"  # an ICE_CANDIDATE signaling message


class IceGatheringState(enum.Enum):
    """RTCIceGatheringState."""

    NEW = "new"  # not started
    GATHERING = "gathering"  # gathering local candidates
    COMPLETE = "complete"  # done


class IceServerKind(enum.Enum):
    STUN = "stun"  # a binding request: the server-reflexive (srflx) address
    TURN = "turn"  # an allocation: the relay address


class IceServerOutcome(enum.Enum):
    ANSWERED = "answered"  # a success response: a mapping (STUN) or an allocation (TURN)
    ERROR_RESPONSE = "error_response"  # the server refused: error_code and error_reason say why
    NO_ANSWER = "no_answer"  # nothing came within bound_s (or before the retransmits ran out)
    FAILED = "failed"  # something else: the name did not resolve, the socket failed, a malformed answer


class GatheringEnd(enum.Enum):
    ALL_ANSWERED = "all_answered"  # every STUN/TURN server answered or refused (or none was given)
    SERVER_BOUND = "server_bound"  # some server gave no answer within its bound: gathering ended there


class IceConnectionState(enum.Enum):
    """RTCIceConnectionState (aiortc uses new, checking, completed, failed, closed)."""

    NEW = "new"  # no checks yet
    CHECKING = "checking"  # connectivity checks running
    CONNECTED = "connected"  # a pair works, checks may go on
    COMPLETED = "completed"  # a pair is nominated: ICE is done
    DISCONNECTED = "disconnected"  # consent lost for now
    FAILED = "failed"  # every pair failed after end-of-candidates, or consent expired
    CLOSED = "closed"  # closed by this side


class PeerConnectionState(enum.Enum):
    """RTCPeerConnectionState: ICE and DTLS together."""

    NEW = "new"  # nothing started
    CONNECTING = "connecting"  # ICE or DTLS under way
    CONNECTED = "connected"  # ICE done and DTLS up
    DISCONNECTED = "disconnected"  # connectivity lost for now
    FAILED = "failed"  # ICE or DTLS failed
    CLOSED = "closed"  # closed, by either side


class CandidatePairState(enum.Enum):
    """RFC 8445 section 6.1.2.6, as aioice's CandidatePair.State names them."""

    FROZEN = "frozen"  # not checked yet, waiting for a pair of the same foundation
    WAITING = "waiting"  # to be checked
    IN_PROGRESS = "in_progress"  # a STUN check is out, retransmitting
    SUCCEEDED = "succeeded"  # the check got its answer
    FAILED = "failed"  # the check got no answer after every retransmit, or an error


class DtlsState(enum.Enum):
    """RTCDtlsTransportState."""

    NEW = "new"  # waiting for ICE
    CONNECTING = "connecting"  # handshake under way
    CONNECTED = "connected"  # handshake done, fingerprint checked
    CLOSED = "closed"  # closed (close_notify)
    FAILED = "failed"  # handshake failed or the fingerprint did not match


class DtlsRole(enum.Enum):
    CLIENT = "client"  # starts the handshake (SDP setup:active)
    SERVER = "server"  # waits for it (SDP setup:passive)
    AUTO = "auto"  # not decided yet


class DtlsSetup(enum.Enum):
    """The SDP a=setup attribute (RFC 4145): who starts the DTLS handshake."""

    ACTIVE = "active"  # this side will start DTLS
    PASSIVE = "passive"  # this side waits
    ACTPASS = "actpass"  # either: an offer says this, the answer decides
    HOLDCONN = "holdconn"  # no connection now


class IceRole(enum.Enum):
    CONTROLLING = "controlling"  # nominates the pair (the offerer, here)
    CONTROLLED = "controlled"  # follows the other side's nomination


@_register("webrtc.upgrade_started")
@dataclass(frozen=True, slots=True, kw_only=True)
class WebRTCUpgradeStarted(Event):
    """The settings an attempt ran with. TURN servers are listed without credentials."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    relayed_connection_id: str  # the relayed connection that carries the signaling
    role: UpgradeRole  # this side's role
    remote_peer_id: str
    stun_servers: tuple[str, ...]  # as given; each local socket asks every one of them
    turn_servers: tuple[str, ...]  # URLs as given, no credentials (aioice uses only the first)
    ice_policy: IcePolicy  # which candidates may be used
    loopback_candidates: bool  # a 127.0.0.1 host candidate is added (aioice leaves it out)
    stun_rto_s: float  # aioice.stun.RETRY_RTO, process-wide
    stun_retransmits: int  # aioice.stun.RETRY_MAX, process-wide
    signaling_timeout_s: float  # opening the signaling stream; waiting for the offer or answer
    gathering_timeout_s: float  # gathering local candidates
    ice_timeout_s: float  # connectivity checks until a pair is nominated
    dtls_timeout_s: float  # the DTLS handshake
    channel_timeout_s: float  # SCTP and the first data channel
    host_addresses: tuple[str, ...] | None = None  # host candidates only on these (None: every interface)
    stun_timeout_s: float | None = None  # while gathering: how long one STUN binding is waited for
    turn_timeout_s: float | None = None  # while gathering: how long one TURN allocation is waited for


@_register("webrtc.signaling_opened")
@dataclass(frozen=True, slots=True, kw_only=True)
class SignalingStreamOpened(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    relayed_connection_id: str  # the relayed connection the stream is on
    inbound: bool  # true on the responder: the dialer opened it
    duration_s: float  # opening and negotiating the protocol; 0 on the responder


@_register("webrtc.signaling_failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class SignalingFailed(Event):
    """A signaling message could not be sent, read, decoded or applied."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    stage: SignalingStage  # what was being done
    message: SignalingMessageType | None  # the message being handled, when known
    error_kind: ErrorKind
    error: str


@_register("webrtc.signaling_ended")
@dataclass(frozen=True, slots=True, kw_only=True)
class SignalingStreamEnded(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    closer: Closer  # `local`: p2pdiag ended it; `remote`: the other peer did
    reset: bool  # reset (the spec's "failure") rather than closed; py-libp2p 0.8.1 often reports a remote reset as a close
    reason: str  # how it ended, in words


@_register("webrtc.description_signaled")
@dataclass(frozen=True, slots=True, kw_only=True)
class DescriptionSignaled(Event):
    """An SDP offer or answer on the signaling stream, sent or received, with what it announces."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    message: SignalingMessageType  # SDP_OFFER or SDP_ANSWER
    sent: bool  # true: this side wrote it; false: it came from the remote
    sdp_bytes: int  # size of the SDP text
    fingerprints: tuple[str, ...]  # a=fingerprint values, "sha-256 AB:CD:…": what DTLS must present
    setup: DtlsSetup | None  # a=setup: who starts the DTLS handshake; null if absent
    ice_ufrag: str | None  # a=ice-ufrag
    ice_lite: bool  # a=ice-lite
    candidates: int  # a=candidate lines in the SDP itself (js trickles them instead)
    end_of_candidates: bool  # a=end-of-candidates present
    data_channel: bool  # an m=application (SCTP data channel) section is present


@_register("webrtc.candidate_gathered")
@dataclass(frozen=True, slots=True, kw_only=True)
class LocalCandidateGathered(Event):
    """One local ICE candidate, as it went into the offer or answer."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    foundation: str  # RFC 8445 foundation
    component: int  # 1: data channels use one component
    candidate_type: CandidateType  # host, srflx, prflx or relay
    protocol: str  # udp or tcp
    address: str  # IP address
    port: int  # UDP or TCP port
    related_address: str | None  # the base of a srflx or relay candidate; null for host
    related_port: int | None  # port of the related address
    priority: int  # RFC 8445 priority (higher is tried first)
    added_by_p2pdiag: bool  # the 127.0.0.1 candidate aioice leaves out


@_register("webrtc.end_of_candidates_sent")
@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfCandidatesSent(Event):
    """An ICE_CANDIDATE message with data `null` sent after the offer or answer."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    candidates: int  # local candidates signalled in all (in the SDP)


@_register("webrtc.candidate_received")
@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteCandidateReceived(Event):
    """A remote candidate, and whether the ICE agent took it (an mDNS name must resolve first)."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    source: CandidateSource  # in the SDP or trickled
    foundation: str  # RFC 8445 foundation
    component: int  # 1: data channels use one component
    candidate_type: CandidateType  # host, srflx, prflx or relay
    protocol: str  # udp or tcp
    address: str  # as signalled: an IP address or an mDNS .local name
    port: int  # UDP or TCP port
    related_address: str | None  # the base of a srflx or relay candidate, as signalled
    related_port: int | None  # port of the related address
    priority: int  # RFC 8445 priority (higher is tried first)
    mdns: bool  # the address is an mDNS name (browsers hide their addresses so)
    mdns_resolved: bool | None  # the mDNS name resolved within 1 s; null when not an mDNS name
    resolved_address: str | None  # what the mDNS name resolved to
    accepted: bool  # the ICE agent took it and will pair it
    note: str | None  # why not accepted, when it was not


@_register("webrtc.candidate_rejected")
@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteCandidateRejected(Event):
    """A candidate that could not be parsed at all."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    source: CandidateSource  # in the SDP or trickled
    candidate: str  # the candidate text as received (cut at 300 characters)
    reason: str  # what is wrong with it


@_register("webrtc.end_of_candidates_received")
@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteEndOfCandidates(Event):
    """The remote said it has no more candidates: a=end-of-candidates, or an ICE_CANDIDATE message
    whose data is JSON null or "" (js-libp2p sends neither)."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    source: CandidateSource  # in the SDP or trickled
    data: str | None  # the ICE_CANDIDATE data as received ("null", '""', or None when absent)


@_register("webrtc.gathering_state_changed")
@dataclass(frozen=True, slots=True, kw_only=True)
class IceGatheringStateChanged(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    state: IceGatheringState  # the new state


@_register("webrtc.ice_server_queried")
@dataclass(frozen=True, slots=True, kw_only=True)
class IceServerQueried(Event):
    """One STUN binding (per local socket and STUN server) or TURN allocation made while gathering."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    server: str  # the STUN or TURN URL as given
    server_kind: IceServerKind  # stun or turn
    local_address: str | None  # the local socket (the srflx candidate's base); null for TURN
    local_port: int | None  # its port
    outcome: IceServerOutcome  # answered, error_response, no_answer or failed
    mapped_address: str | None  # STUN: XOR-MAPPED-ADDRESS; TURN: XOR-RELAYED-ADDRESS
    mapped_port: int | None  # its port
    error_code: int | None = None  # STUN ERROR-CODE of a refusal (RFC 8489 section 14.8), e.g. 401
    error_reason: str | None = None  # its reason phrase, as the server sent it
    error: str | None = None  # what failed, when the outcome is failed
    duration_s: float  # from the request to the answer, or to giving up
    bound_s: float  # how long an answer was waited for (`stun` / `turn` upgrade timeouts)


@_register("webrtc.gathering_ended")
@dataclass(frozen=True, slots=True, kw_only=True)
class IceGatheringEnded(Event):
    """Local gathering is over: how long it took, and what ended it."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    duration_s: float  # host sockets, STUN bindings and TURN allocations together
    ended_by: GatheringEnd  # all_answered, or server_bound: a server was waited for until its bound
    bound_s: float | None  # the bound that ended it (server_bound); null otherwise
    unanswered: tuple[str, ...] = ()  # the servers that gave no answer within their bound


@_register("webrtc.ice_state_changed")
@dataclass(frozen=True, slots=True, kw_only=True)
class IceConnectionStateChanged(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    state: IceConnectionState  # the new state


@_register("webrtc.connection_state_changed")
@dataclass(frozen=True, slots=True, kw_only=True)
class PeerConnectionStateChanged(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    state: PeerConnectionState  # the new state


@_register("webrtc.pair_state_changed")
@dataclass(frozen=True, slots=True, kw_only=True)
class CandidatePairStateChanged(Event):
    """One transition of one candidate pair, as aioice's Connection.check_state makes it."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    local_address: str  # this side's candidate address
    local_port: int  # this side's candidate port
    local_type: CandidateType  # aioice says host even when a NAT mapping (srflx) carried the check
    remote_address: str  # the remote candidate's address (an mDNS name stays a name)
    remote_port: int  # the remote candidate's port
    remote_type: CandidateType  # prflx when learned from a check rather than signalled
    protocol: str  # udp or tcp
    from_state: CandidatePairState  # state before
    to_state: CandidatePairState  # state after
    nominated: bool  # chosen to carry the connection


@_register("webrtc.pair_final")
@dataclass(frozen=True, slots=True, kw_only=True)
class CandidatePairFinal(Event):
    """Each pair of the check list and its state when the attempt ended (pairs that never changed
    state appear only here)."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    local_address: str  # this side's candidate address
    local_port: int  # this side's candidate port
    local_type: CandidateType  # aioice says host even when a NAT mapping (srflx) carried the check
    remote_address: str  # the remote candidate's address (an mDNS name stays a name)
    remote_port: int  # the remote candidate's port
    remote_type: CandidateType  # prflx when learned from a check rather than signalled
    protocol: str  # udp or tcp
    state: CandidatePairState  # its state when the attempt ended
    nominated: bool  # chosen to carry the connection


@_register("webrtc.pair_selected")
@dataclass(frozen=True, slots=True, kw_only=True)
class CandidatePairSelected(Event):
    """The pair ICE completed with: the path the WebRTC connection takes."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    local_address: str  # this side's candidate address
    local_port: int  # this side's candidate port
    local_type: CandidateType  # aioice says host even when a NAT mapping (srflx) carried the check
    remote_address: str  # the remote candidate's address (an mDNS name stays a name)
    remote_port: int  # the remote candidate's port
    remote_type: CandidateType  # prflx when learned from a check rather than signalled
    protocol: str  # udp or tcp
    ice_role: IceRole  # this side's ICE role


@_register("webrtc.dtls_state_changed")
@dataclass(frozen=True, slots=True, kw_only=True)
class DtlsStateChanged(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    state: DtlsState  # the new state
    role: DtlsRole  # this side's DTLS role
    error: str | None  # on failure: what went wrong, as far as it can be told


@_register("webrtc.channel_opened")
@dataclass(frozen=True, slots=True, kw_only=True)
class DataChannelOpened(Event):
    """A data channel opened: `init` during the upgrade, then one per libp2p stream."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    label: str  # `init` for the dialer's first channel, empty for libp2p streams
    channel_id: int | None  # the SCTP stream id
    inbound: bool  # the remote opened it
    duration_s: float | None  # from creation to open, for channels this side created


@_register("webrtc.channel_open_repeated")
@dataclass(frozen=True, slots=True, kw_only=True)
class DataChannelOpenRepeated(Event):
    """The remote announced a data channel that was already open (a second DATA_CHANNEL_OPEN on its
    SCTP stream; libdatachannel does this now and then). p2pdiag ignores the repeat: aiortc alone
    would abort the connection."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    channel_id: int  # the SCTP stream id
    label: str  # the label in the repeated announcement


@_register("webrtc.upgrade_succeeded")
@dataclass(frozen=True, slots=True, kw_only=True)
class WebRTCUpgradeSucceeded(Event):
    """The WebRTC connection is up: ICE, DTLS, SCTP and a first data channel."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    relayed_connection_id: str  # the relayed connection that carried the signaling
    role: UpgradeRole  # this side's role
    duration_s: float  # from the upgrade's start


@_register("webrtc.upgrade_failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class WebRTCUpgradeFailed(Event):
    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    relayed_connection_id: str  # the relayed connection that carried the signaling
    role: UpgradeRole  # this side's role
    step: UpgradeStep  # the step the attempt failed at
    error_kind: ErrorKind
    reason: str  # why, in words
    duration_s: float  # from the upgrade's start


@_register("webrtc.connection_closed")
@dataclass(frozen=True, slots=True, kw_only=True)
class WebRTCConnectionClosed(Event):
    """A WebRTC connection that had been established ended."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)
    closer: Closer  # `local`: p2pdiag closed it; `remote`: the peer did (or consent expired)
    reason: str  # how it ended, in words
    age_s: float  # since the upgrade succeeded
    streams_opened: int  # data channels this side opened for libp2p streams
    streams_accepted: int  # data channels the remote opened for libp2p streams ("init" not counted)


# --- this network's NAT (`p2pdiag nat`; `dial` with two or more STUN servers) -------------------------


@_register("nat.test_completed")
@dataclass(frozen=True, slots=True, kw_only=True)
class NatTestCompleted(Event):
    """One STUN binding test of the RFC 5780-style NAT probe (p2pdiag/probes/nat.py), answered or not."""

    test: str  # mapping-1 (primary), mapping-2 (other IP, or the second server), mapping-3 (other IP and port), filtering-1..3
    server_address: str  # where the request went
    server_port: int  # its port
    change_request: int  # CHANGE-REQUEST flags asked for: 0, 2 (other port), 6 (other IP and port)
    local_port: int  # this side's UDP socket (each test family has its own)
    answered: bool  # an answer came before the test's timeout
    mapped_address: str | None  # XOR-MAPPED-ADDRESS: the NAT's public address for the socket
    mapped_port: int | None  # its port
    origin_address: str | None  # where the answer came from
    origin_port: int | None  # its port
    other_address: str | None  # OTHER-ADDRESS: the server's second IP (RFC 5780), when it sent one
    other_port: int | None  # its port
    rtt_s: float | None  # from the first request to the answer


# --- (de)serialisation -----------------------------------------------------------------------


class EventDecodeError(ValueError):
    pass


def event_to_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event.kind}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, inner[0], value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise EventDecodeError(f"field {name!r}: {value!r} is not one of {[m.value for m in hint]}")
    if origin is tuple:
        if not isinstance(value, list):
            raise EventDecodeError(f"field {name!r} should be a list")
        return tuple(_coerce(name, args[0], v) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EventDecodeError(f"field {name!r} should be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EventDecodeError(f"field {name!r} should be an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise EventDecodeError(f"field {name!r} should be a string")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise EventDecodeError(f"field {name!r} should be true or false")
        return value
    return value


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """Build an event from its trace-file form; None for a type this version does not know."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise EventDecodeError("no 'type' key")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return None
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is not dataclasses.MISSING:
                continue  # a field added later, with a default: older traces lack it
            raise EventDecodeError(f"{kind}: missing field {f.name!r}")
        kwargs[f.name] = _coerce(f.name, hints[f.name], data[f.name])
    return cls(**kwargs)
