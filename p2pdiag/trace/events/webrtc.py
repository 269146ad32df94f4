"""Events of the WebRTC upgrade."""

from __future__ import annotations

import enum

from p2pdiag.trace.events.base import Closer, ConnectionEvent, ErrorKind, event_class, register

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


@event_class
class WebRTCEvent(ConnectionEvent):
    """An event about one WebRTC connection and its upgrade (every `webrtc.*` type)."""

    connection_id: str  # the WebRTC connection: `webrtc-N` (dial) or `webrtc-inbound-N` (listen)


@event_class
class CandidatePairEvent(WebRTCEvent):
    """An event about one ICE candidate pair: this side's candidate and the remote's."""

    local_address: str  # this side's candidate address
    local_port: int  # this side's candidate port
    local_type: CandidateType  # aioice says host even when a NAT mapping (srflx) carried the check
    remote_address: str  # the remote candidate's address (an mDNS name stays a name)
    remote_port: int  # the remote candidate's port
    remote_type: CandidateType  # prflx when learned from a check rather than signalled
    protocol: str  # udp or tcp

@register("webrtc.upgrade_started")
@event_class
class WebRTCUpgradeStarted(WebRTCEvent):
    """The settings an attempt ran with. TURN servers are listed without credentials."""

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


@register("webrtc.signaling_opened")
@event_class
class SignalingStreamOpened(WebRTCEvent):
    relayed_connection_id: str  # the relayed connection the stream is on
    inbound: bool  # true on the responder: the dialer opened it
    duration_s: float  # opening and negotiating the protocol; 0 on the responder


@register("webrtc.signaling_failed")
@event_class
class SignalingFailed(WebRTCEvent):
    """A signaling message could not be sent, read, decoded or applied."""

    stage: SignalingStage  # what was being done
    message: SignalingMessageType | None  # the message being handled, when known
    error_kind: ErrorKind
    error: str


@register("webrtc.signaling_ended")
@event_class
class SignalingStreamEnded(WebRTCEvent):
    closer: Closer  # `local`: p2pdiag ended it; `remote`: the other peer did
    reset: bool  # reset (the spec's "failure"), not closed; py-libp2p 0.8.1 often reports a remote reset as a close
    reason: str  # how it ended, in words


@register("webrtc.description_signaled")
@event_class
class DescriptionSignaled(WebRTCEvent):
    """An SDP offer or answer on the signaling stream, sent or received, with what it announces."""

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


@register("webrtc.candidate_gathered")
@event_class
class LocalCandidateGathered(WebRTCEvent):
    """One local ICE candidate, as it went into the offer or answer."""

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


@register("webrtc.end_of_candidates_sent")
@event_class
class EndOfCandidatesSent(WebRTCEvent):
    """An ICE_CANDIDATE message with data `null` sent after the offer or answer."""

    candidates: int  # local candidates signalled in all (in the SDP)


@register("webrtc.candidate_received")
@event_class
class RemoteCandidateReceived(WebRTCEvent):
    """A remote candidate, and whether the ICE agent took it (an mDNS name must resolve first)."""

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


@register("webrtc.candidate_rejected")
@event_class
class RemoteCandidateRejected(WebRTCEvent):
    """A candidate that could not be parsed at all."""

    source: CandidateSource  # in the SDP or trickled
    candidate: str  # the candidate text as received (cut at 300 characters)
    reason: str  # what is wrong with it


@register("webrtc.end_of_candidates_received")
@event_class
class RemoteEndOfCandidates(WebRTCEvent):
    """The remote said it has no more candidates: a=end-of-candidates, or an ICE_CANDIDATE message
    whose data is JSON null or "" (js-libp2p sends neither)."""

    source: CandidateSource  # in the SDP or trickled
    data: str | None  # the ICE_CANDIDATE data as received ("null", '""', or None when absent)


@register("webrtc.gathering_state_changed")
@event_class
class IceGatheringStateChanged(WebRTCEvent):
    state: IceGatheringState  # the new state


@register("webrtc.ice_server_queried")
@event_class
class IceServerQueried(WebRTCEvent):
    """One STUN binding (per local socket and STUN server) or TURN allocation made while gathering."""

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
    send_refused: bool = False  # outcome failed: this host refused to send the request (EPERM), at once and again


@register("webrtc.gathering_ended")
@event_class
class IceGatheringEnded(WebRTCEvent):
    """Local gathering is over: how long it took, and what ended it."""

    duration_s: float  # host sockets, STUN bindings and TURN allocations together
    ended_by: GatheringEnd  # all_answered, or server_bound: a server was waited for until its bound
    bound_s: float | None  # the bound that ended it (server_bound); null otherwise
    unanswered: tuple[str, ...] = ()  # the servers that gave no answer within their bound


@register("webrtc.ice_state_changed")
@event_class
class IceConnectionStateChanged(WebRTCEvent):
    state: IceConnectionState  # the new state


@register("webrtc.connection_state_changed")
@event_class
class PeerConnectionStateChanged(WebRTCEvent):
    state: PeerConnectionState  # the new state


@register("webrtc.pair_state_changed")
@event_class
class CandidatePairStateChanged(CandidatePairEvent):
    """One transition of one candidate pair, as aioice's Connection.check_state makes it."""

    from_state: CandidatePairState  # state before
    to_state: CandidatePairState  # state after
    nominated: bool  # chosen to carry the connection


@register("webrtc.pair_final")
@event_class
class CandidatePairFinal(CandidatePairEvent):
    """Each pair of the check list and its state when the attempt ended (pairs that never changed
    state appear only here)."""

    state: CandidatePairState  # its state when the attempt ended
    nominated: bool  # chosen to carry the connection


@register("webrtc.send_failed")
@event_class
class UdpSendFailed(WebRTCEvent):
    """The OS failed a connectivity check's UDP send at once (the first such failure per local socket,
    address and error). EPERM is this host's own packet filter refusing it (an nftables or iptables
    `drop` or `reject` on output): it never left the machine."""

    local_address: str  # the local socket (a host candidate's base)
    local_port: int  # its port
    remote_address: str  # where the send went (the remote candidate's address)
    remote_port: int  # its port
    errno_name: str  # EPERM, ENETUNREACH, EINVAL …
    error: str  # the OS's words
    refused: bool  # EPERM: refused by this host's firewall (not a route missing)


@register("webrtc.checks_refused")
@event_class
class IceChecksRefused(WebRTCEvent):
    """Every candidate pair's sends failed on this host and none went out: the checks cannot work,
    whatever the peer does, so ICE ended here instead of waiting out its budget."""

    pairs: int  # pairs in the check list
    refused_pairs: int  # pairs whose every send was refused (EPERM), at least twice (a check and its retransmit)
    unroutable_pairs: int  # pairs whose every send failed otherwise (no route from that socket)
    sends_refused: int  # refused sends, all pairs together
    errno_name: str  # the refusal's error (EPERM)
    after_s: float  # from the first check's first send to the refusal that settled it


@register("webrtc.pair_selected")
@event_class
class CandidatePairSelected(CandidatePairEvent):
    """The pair ICE completed with: the path the WebRTC connection takes."""

    ice_role: IceRole  # this side's ICE role


@register("webrtc.dtls_state_changed")
@event_class
class DtlsStateChanged(WebRTCEvent):
    state: DtlsState  # the new state
    role: DtlsRole  # this side's DTLS role
    error: str | None  # on failure: what went wrong, as far as it can be told


@register("webrtc.channel_opened")
@event_class
class DataChannelOpened(WebRTCEvent):
    """A data channel opened: `init` during the upgrade, then one per libp2p stream."""

    label: str  # `init` for the dialer's first channel, empty for libp2p streams
    channel_id: int | None  # the SCTP stream id
    inbound: bool  # the remote opened it
    duration_s: float | None  # from creation to open, for channels this side created


@register("webrtc.channel_open_repeated")
@event_class
class DataChannelOpenRepeated(WebRTCEvent):
    """The remote announced a data channel that was already open (a second DATA_CHANNEL_OPEN on its
    SCTP stream; libdatachannel does this now and then). p2pdiag ignores the repeat: aiortc alone
    would abort the connection."""

    channel_id: int  # the SCTP stream id
    label: str  # the label in the repeated announcement


@register("webrtc.upgrade_succeeded")
@event_class
class WebRTCUpgradeSucceeded(WebRTCEvent):
    """The WebRTC connection is up: ICE, DTLS, SCTP and a first data channel."""

    relayed_connection_id: str  # the relayed connection that carried the signaling
    role: UpgradeRole  # this side's role
    duration_s: float  # from the upgrade's start


@register("webrtc.upgrade_failed")
@event_class
class WebRTCUpgradeFailed(WebRTCEvent):
    relayed_connection_id: str  # the relayed connection that carried the signaling
    role: UpgradeRole  # this side's role
    step: UpgradeStep  # the step the attempt failed at
    error_kind: ErrorKind
    reason: str  # why, in words
    duration_s: float  # from the upgrade's start


@register("webrtc.connection_closed")
@event_class
class WebRTCConnectionClosed(WebRTCEvent):
    """A WebRTC connection that had been established ended."""

    closer: Closer  # `local`: p2pdiag closed it; `remote`: the peer did (or consent expired)
    reason: str  # how it ended, in words
    age_s: float  # since the upgrade succeeded
    streams_opened: int  # data channels this side opened for libp2p streams
    streams_accepted: int  # data channels the remote opened for libp2p streams ("init" not counted)
