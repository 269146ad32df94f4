"""Events of the connection to a relay: dialing it, identify, HOP CONNECT, RESERVE and STOP."""

from __future__ import annotations

from p2pdiag.trace.events.base import ConnectionEvent, ErrorKind, Event, Subject, event_class, register

# --- the connection to a relay ---------------------------------------------------------------


@register("relay.dial_started")
@event_class
class RelayDialStarted(Event):
    relay: str
    relay_peer_id: str
    transport: str  # "tcp" or "ws"


@register("relay.connected")
@event_class
class RelayConnected(Event):
    relay: str
    security: str | None
    muxer: str | None
    duration_s: float


@register("relay.dial_failed")
@event_class
class RelayDialFailed(Event):
    relay: str
    error_kind: ErrorKind
    error: str
    duration_s: float


@register("identify.completed")
@event_class
class IdentifyCompleted(ConnectionEvent):
    subject: Subject
    peer_id: str
    agent_version: str | None
    protocol_version: str | None
    protocols: tuple[str, ...]
    observed_addr: str | None
    listen_addrs: tuple[str, ...]
    duration_s: float


@register("identify.failed")
@event_class
class IdentifyFailed(ConnectionEvent):
    subject: Subject
    peer_id: str
    error_kind: ErrorKind
    error: str
    duration_s: float


# --- HOP (dialer) and RESERVE / STOP (listener) ----------------------------------------------


@register("hop.connect_sent")
@event_class
class HopConnectSent(Event):
    relay: str
    target_peer_id: str


@register("hop.status_received")
@event_class
class HopStatusReceived(Event):
    """The relay's answer to CONNECT. Limit values are as announced (the spec's unit: seconds)."""

    relay: str
    status_code: int | None
    status_name: str
    announced_duration_s: int | None
    announced_data_bytes: int | None
    duration_s: float


@register("hop.failed")
@event_class
class HopFailed(Event):
    relay: str
    stage: str  # "negotiate", "write", "read" or "decode"
    error_kind: ErrorKind
    error: str
    duration_s: float


@register("reservation.accepted")
@event_class
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


@register("reservation.failed")
@event_class
class ReservationFailed(Event):
    relay: str
    status_code: int | None
    status_name: str
    error_kind: ErrorKind | None
    error: str
    refresh: bool
    duration_s: float


@register("stop.connect_received")
@event_class
class StopConnectReceived(ConnectionEvent):
    relay_peer_id: str
    source_peer_id: str
    announced_duration_s: int | None
    announced_data_bytes: int | None
