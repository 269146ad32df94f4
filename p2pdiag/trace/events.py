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
