"""What `watch` watches and what one probe of it saw: plain values, no I/O.

A target is one thing probed on its own interval under its own timeout. A probe's result is an
`Observation`; the tracker (`tracker.py`) compares it with the last one and names what changed;
the metrics, the live view and the trace are fed from both. The relay reservation that watch
holds between probes reports a `ReservationState` whenever it changes.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from p2pdiag.targets import RelayAddr

# multiaddr protocols that take no value: the others are followed by one ("/tcp/4001")
_NO_VALUE = frozenset({"ws", "wss", "tls", "noise", "quic", "quic-v1", "webtransport", "webrtc", "webrtc-direct",
                       "p2p-circuit", "http", "https", "utp", "udt", "p2p-webrtc-star", "p2p-webrtc-direct",
                       "p2p-websocket-star", "unix"})
MAX_PROTOCOL_NAMES = 32  # an address is a few protocols; a peer may announce anything


def protocol_names(addr: str) -> list[str]:
    """The protocol names of a multiaddr's text, in order, values skipped (at most MAX_PROTOCOL_NAMES)."""
    parts = addr.split("/")[1:]
    names: list[str] = []
    i = 0
    while i < len(parts) and len(names) < MAX_PROTOCOL_NAMES:
        names.append(parts[i])
        i += 1 if parts[i] in _NO_VALUE else 2
    return names


class Module(enum.Enum):
    """The probes, named as `/probe?module=` names them."""

    RELAY = "relay"  # reachable, identify, HOP offered, a reservation made (and held between probes)
    PEER = "peer"  # every listen address dialed directly, and through each relay; identify each time
    UPGRADE = "upgrade"  # the whole `dial` verdict (relayed path and WebRTC upgrade)
    GOSSIPSUB = "gossipsub"  # canaries across the mesh between two light peers


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    name: str  # unique within a config; the `target` label of every series about it
    interval_s: float
    timeout_s: float  # one probe's budget; always below interval_s

    @property
    def module(self) -> Module:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """What identifies the target across restarts and shards: its module and name."""
        return f"{self.module.value}:{self.name}"

    def shard(self, count: int) -> int:
        """Which of COUNT shards watches this target (0-based): a stable hash of `key`, the same in
        every process and on every machine (Python's hash() is salted per process)."""
        digest = hashlib.sha256(self.key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayTarget(Target):
    relay: RelayAddr
    reserve: bool = True  # hold a reservation between probes and follow its life

    @property
    def module(self) -> Module:
        return Module.RELAY


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerTarget(Target):
    peer_id: str
    addrs: tuple[str, ...] = ()  # direct addresses (with /p2p/<peer_id>) from the config, dialed every probe
    relays: tuple[RelayAddr, ...] = ()  # the peer is also dialed through each of these
    learn_addrs: bool = True  # also dial the direct addresses the peer's identify announced
    hold_s: float = 0.0  # hold each relayed circuit this long after identify, pinging: a relay cutting it is seen

    @property
    def module(self) -> Module:
        return Module.PEER


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeTarget(Target):
    peer_id: str
    relays: tuple[RelayAddr, ...]

    @property
    def module(self) -> Module:
        return Module.UPGRADE


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipTarget(Target):
    topic: str
    attach: tuple[str, str]  # two fleet nodes (full addresses with /p2p/), one light peer attached to each
    watched: tuple[str, ...] = ()  # peer ids whose subscription to the topic is reported
    canaries: int = 3  # canaries each way per probe

    @property
    def module(self) -> Module:
        return Module.GOSSIPSUB


AnyTarget = RelayTarget | PeerTarget | UpgradeTarget | GossipTarget


# --- what a probe saw ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phase:
    """How long one phase of a probe took. Names: relay-dial, relay-identify, reserve, hop, dial,
    secure, identify, signaling, ice, dtls, first-channel, canary."""

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class RelayFacts:
    agent: str | None = None
    protocols: tuple[str, ...] = ()
    hop_offered: bool | None = None  # None: identify did not answer
    reservation_status: str | None = None  # the Status name the RESERVE got ("OK", "RESERVATION_REFUSED" …)
    reservation_expiry_unix_s: float | None = None
    limit_duration_s: float | None = None  # as announced, in seconds (the spec's unit)
    limit_data_bytes: int | None = None
    listen_addrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AddrDial:
    """One dial of one address: directly (`relay` None) or through a relay (its target name or address)."""

    addr: str
    transport: str  # "tcp", "ws", "wss", "p2p-circuit", or what p2pdiag cannot dial ("quic-v1", "webrtc" …)
    relay: str | None
    ok: bool  # connected, secured and identified
    reached: bool  # the transport connected (TCP accepted, WebSocket upgraded, HOP answered OK)
    secured: bool
    failed_phase: str | None = None  # "dial", "hop", "secure", "identify" …; None when ok or not tried
    error_kind: str | None = None  # an ErrorKind value, or a HOP Status name
    error: str | None = None  # one line
    duration_s: float | None = None
    tried: bool = True  # False: a transport p2pdiag cannot dial (listed so it still counts per transport)
    phases: tuple[Phase, ...] = ()  # its own: dial, secure, identify (direct); relay-dial, hop, secure, identify
    held_s: float | None = None  # through a relay: how long the circuit was held after identify (pings over it)
    cut: str | None = None  # ...and, when the relay ended it while held: "duration", "data" or "unexplained"
    cut_after_s: float | None = None  # the circuit's age when it was cut


@dataclass(frozen=True, slots=True)
class PeerFacts:
    agent: str | None = None
    protocols: tuple[str, ...] = ()
    listen_addrs: tuple[str, ...] = ()  # as the peer's identify announced them (the last that answered)
    identified: bool = False
    dials: tuple[AddrDial, ...] = ()


@dataclass(frozen=True, slots=True)
class UpgradeFacts:
    outcome: str  # the dial verdict's outcome ("upgraded", "relayed_only", "unreachable" …)
    causes: tuple[str, ...]  # finding codes, the headline first
    certainty: str | None = None
    exit_code: int = 0


@dataclass(frozen=True, slots=True)
class CanaryResult:
    sender: str  # which light peer published: "a" or "b"
    seq: int
    delivered: bool
    latency_s: float | None  # publish to receipt on the other light peer
    via: str | None = None  # the peer id the other light peer received it from (a fleet node, never the sender)


@dataclass(frozen=True, slots=True)
class GossipFacts:
    canaries: tuple[CanaryResult, ...] = ()
    mesh_peers: dict[str, int] = field(default_factory=dict)  # light peer ("a"/"b") -> its mesh size on the topic
    topic_peers: dict[str, int] = field(default_factory=dict)  # light peer -> peers it knows subscribed
    subscribed: dict[str, bool] = field(default_factory=dict)  # watched peer id -> seen subscribed by a light peer

    @property
    def sent(self) -> int:
        return len(self.canaries)

    @property
    def delivered(self) -> int:
        return sum(1 for c in self.canaries if c.delivered)


@dataclass(frozen=True, slots=True)
class Observation:
    """One probe of one target. `ok` is the module's success (what `probe_success` says)."""

    module: Module
    target: str
    ok: bool
    started_unix_s: float
    duration_s: float
    phases: tuple[Phase, ...] = ()
    failed_phase: str | None = None
    error_kind: str | None = None
    error: str | None = None  # one line, for a person
    timed_out: bool = False  # the probe's own budget ran out
    # p2pdiag's own loop was held this long while the probe ran, and something in it timed out: the
    # timeout may be p2pdiag's (an overloaded machine), so the observation says nothing of the target
    starved_s: float | None = None
    relay: RelayFacts | None = None
    peer: PeerFacts | None = None
    upgrade: UpgradeFacts | None = None
    gossip: GossipFacts | None = None


@dataclass(frozen=True, slots=True)
class ReservationState:
    """The reservation watch holds on a relay, reported whenever it changes (made, refreshed, lost)."""

    target: str
    up: bool
    at_unix_s: float
    expiry_unix_s: float | None = None
    refreshes: int = 0  # refreshes made since this reservation was first made
    error_kind: str | None = None
    error: str | None = None  # why it is down (the connection closed, RESERVE refused with its Status …)
    limit_duration_s: float | None = None
    limit_data_bytes: int | None = None
