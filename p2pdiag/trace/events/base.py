"""What every event is: the `Event` base, the bases of events about one connection, the registry
of event types by their `type` name, and the enums several event modules share.

Every event has `t_s`, seconds since the run began on a monotonic clock. Names are past tense,
units are in field names, states and codes are enums. Each class is registered under its
`kind`, the value of the `type` key in the trace file (docs/trace-format.md lists them).
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass
from typing import ClassVar


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
    NEGOTIATION_FAILED = "negotiation_failed"
    WEBSOCKET_UPGRADE_FAILED = "websocket_upgrade_failed"
    OTHER = "other"


class Closer(enum.Enum):
    """Who ended a relayed connection, as far as the probe could tell."""

    LOCAL = "local"  # p2pdiag closed it at the end of the run
    REMOTE = "remote"  # the peer closed the secured session cleanly
    RELAY = "relay"  # the relay reset or ended the circuit stream under the session
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    t_s: float
    kind: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEvent(Event):
    """An event about one connection, named by `connection_id` (which always comes right after
    `t_s` in the trace file)."""

    connection_id: str


E = typing.TypeVar("E", bound=Event)

EVENT_TYPES: dict[str, type[Event]] = {}
"""Every event type by its `type` name. Importing p2pdiag.trace.events fills it completely."""


def register(kind: str) -> typing.Callable[[type[E]], type[E]]:
    """Class decorator: CLS is the event written as `{"type": KIND, ...}`. A name is registered once."""

    def wrap(cls: type[E]) -> type[E]:
        if kind in EVENT_TYPES:
            raise ValueError(f"event type {kind!r} is registered twice: {EVENT_TYPES[kind].__name__}, {cls.__name__}")
        cls.kind = kind
        EVENT_TYPES[kind] = cls
        return cls

    return wrap
