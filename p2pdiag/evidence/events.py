"""The facts read from a js-libp2p debug log, each with where it was read.

Kept apart from the trace's events (p2pdiag/trace/events/): a log says less than a probe
records (no byte counts of its own, no step durations, often no time at all), so these carry
only what a log line states, and they never go into a trace file. `t_s` is seconds since the
log's first timestamp, None when the log has no absolute times.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogFact:
    line: int  # the line of the log the fact was read from, 1-based
    t_s: float | None  # seconds since the log's first timestamped line; None without timestamps


@dataclass(frozen=True, slots=True)
class DialRequested(LogFact):
    """The connection manager was asked to dial a peer."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class AddressDialed(LogFact):
    """One address dial ended: succeeded, or failed with the error the dial queue logged."""

    address: str
    ok: bool
    error: str | None  # "InvalidMessageError: failed to connect via relay with status NO_RESERVATION"


@dataclass(frozen=True, slots=True)
class PeerIdentified(LogFact):
    peer_id: str
    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RelayedConnectionOpened(LogFact):
    """A relayed (circuit) connection was set up, with the Limit as the js client read it."""

    connection: str  # js-libp2p's id of the relayed connection
    peer_id: str  # the peer at the other end
    outbound: bool
    duration_limit: int | None  # Limit.duration as received (the spec's unit: seconds; js relays send ms)
    data_limit_bytes: int | None  # Limit.data, per direction on js relays


@dataclass(frozen=True, slots=True)
class ReservationCreated(LogFact):
    """This node holds a reservation on a relay: it listens through it."""

    relay_peer_id: str
    expiry: str | None = None  # when js-libp2p says it expires, as ISO 8601 UTC; None when unreadable


@dataclass(frozen=True, slots=True)
class ReservationRefreshing(LogFact):
    """js-libp2p's refresh timer fired: it asks the relay to extend the reservation."""

    relay_peer_id: str


@dataclass(frozen=True, slots=True)
class ReservationRefreshFailed(LogFact):
    relay_peer_id: str
    error: str


@dataclass(frozen=True, slots=True)
class ReservationRemoved(LogFact):
    """The reservation left the node's store: its connection to the relay closed, or a refresh failed.
    The node no longer listens through that relay unless it reserves again."""

    relay_peer_id: str


@dataclass(frozen=True, slots=True)
class RelayRefused(LogFact):
    """The relay answered HOP CONNECT with a Status other than OK."""

    relay_peer_id: str
    peer_id: str
    status_name: str  # the spec's name: NO_RESERVATION, PERMISSION_DENIED …


@dataclass(frozen=True, slots=True)
class RelayedConnectionAborted(LogFact):
    """A relayed connection ended with an error (a reset of its circuit stream is the relay's cut)."""

    connection: str
    error: str  # "StreamResetError: The stream has been reset"


@dataclass(frozen=True, slots=True)
class ConnectionClosing(LogFact):
    """This node closed a connection itself."""

    connection: str
    address: str


@dataclass(frozen=True, slots=True)
class CircuitBytesWritten(LogFact):
    """Trace level: bytes the relayed connection wrote into its circuit (what the relay counts)."""

    connection: str
    nbytes: int


@dataclass(frozen=True, slots=True)
class ProtocolRefused(LogFact):
    """A stream's protocol negotiation failed: the other side does not offer it."""

    protocol: str
    connection: str | None  # the relayed connection it was tried on, when it was one
    error: str


@dataclass(frozen=True, slots=True)
class LimitedStreamRefused(LogFact):
    """js-libp2p would not open a protocol stream on a limited (relayed) connection."""

    error: str
    protocol: str | None = None  # the stream's protocol, when the log negotiated it on that stream first
    connection: str | None = None  # the relayed connection's id, from the namespace
    opened_by_remote: bool | None = None  # an inbound stream (this node's handler refused it), or outbound


@dataclass(frozen=True, slots=True)
class WebRTCStep(LogFact):
    """A step of the WebRTC upgrade (trace level): offer sent, answer received, a remote candidate …"""

    step: str  # "dial", "offer", "answer", "remote-candidate", "candidate-refused", "connected"
    detail: str  # the address dialed, the candidate text …


@dataclass(frozen=True, slots=True)
class WebRTCUpgraded(LogFact):
    """The WebRTC connection was upgraded and added: the direct connection exists."""

    connection: str


@dataclass(frozen=True, slots=True)
class WebRTCFailed(LogFact):
    """The peer connection or ICE reached a failed state, or the WebRTC dial gave up."""

    what: str  # "connection state failed", "ICE connection state failed", the error …


@dataclass(frozen=True, slots=True)
class SelfAddressObserved(LogFact):
    """identify's `our observed address was <addr>`: an address another peer sees this node at; its last
    /p2p/ component is this node's own peer id."""

    address: str


@dataclass(frozen=True, slots=True)
class NodeStopping(LogFact):
    """The node began to stop (its transports close their listeners): connections closed after this
    were closed by the stop, not by a decision about them."""
