"""Events of the relayed connection: the circuit, its traffic and end, and pings over any connection."""

from __future__ import annotations

from p2pdiag.trace.events.base import Closer, ConnectionEvent, ErrorKind, Path, event_class, register

# --- the relayed connection ------------------------------------------------------------------


@register("circuit.secured")
@event_class
class CircuitSecured(ConnectionEvent):
    """Noise + muxer negotiated over the circuit: the relayed connection exists."""

    relay: str
    remote_peer_id: str
    inbound: bool
    security: str | None
    muxer: str | None
    duration_s: float


@register("circuit.upgrade_failed")
@event_class
class CircuitUpgradeFailed(ConnectionEvent):
    relay: str
    error_kind: ErrorKind
    error: str
    duration_s: float


@register("circuit.traffic")
@event_class
class CircuitTraffic(ConnectionEvent):
    """Bytes carried by the circuit stream so far, all protocol overhead included."""

    bytes_sent: int
    bytes_received: int
    age_s: float


@register("circuit.closed")
@event_class
class CircuitClosed(ConnectionEvent):
    closer: Closer
    reason: str
    bytes_sent: int
    bytes_received: int
    age_s: float


@register("ping.completed")
@event_class
class PingCompleted(ConnectionEvent):
    path: Path
    rtt_s: float


@register("ping.failed")
@event_class
class PingFailed(ConnectionEvent):
    path: Path
    error_kind: ErrorKind
    error: str


@register("ping.served")
@event_class
class PingServed(ConnectionEvent):
    """The answering side echoed a ping on this connection."""

    count: int
