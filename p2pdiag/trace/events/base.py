"""What every event is: the `Event` base, the bases of events about one connection, the registry
of event types by their `type` name, and the enums several event modules share.

Every event has `t_s`, seconds since the run began on a monotonic clock. Names are past tense,
units are in field names, states and codes are enums. Each class is registered under its
`kind`, the value of the `type` key in the trace file (docs/trace-format.md lists them).
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import reprlib
import typing
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
    NEGOTIATION_FAILED = "negotiation_failed"
    WEBSOCKET_UPGRADE_FAILED = "websocket_upgrade_failed"
    OTHER = "other"


class Closer(enum.Enum):
    """Who ended a relayed connection, as far as the probe could tell."""

    LOCAL = "local"  # p2pdiag closed it at the end of the run
    REMOTE = "remote"  # the peer closed the secured session cleanly
    RELAY = "relay"  # the relay reset or ended the circuit stream under the session
    UNKNOWN = "unknown"


T = typing.TypeVar("T")

event_class: typing.Callable[[type[T]], type[T]] = dataclasses.dataclass(
    frozen=True, slots=True, kw_only=True, eq=False, repr=False)
"""How every event class is made: a frozen, slotted, keyword-only dataclass whose `__init__`,
`__setattr__` and `__delattr__` dataclasses generates, and whose `__eq__`, `__hash__` and `__repr__`
are Event's: the same as those dataclasses would generate (fields compared and hashed as a tuple,
`Name(field=value, ...)`), written once instead of compiled for each of the 71 classes: importing
p2pdiag.trace.events took 120 ms of CPU, now 76 (docs/performance.md)."""

_VALUES: dict[type, typing.Callable[[Any], tuple[Any, ...]]] = {}


def _values(cls: type) -> typing.Callable[[Any], tuple[Any, ...]]:
    """A getter of an event of CLS: its field values as a tuple, in the dataclass's field order (what
    its __eq__ and __hash__ compare); one getter per class, made on first use."""
    getter = _VALUES.get(cls)
    if getter is None:
        names = [f.name for f in dataclasses.fields(cls)]
        one = operator.attrgetter(*names)
        getter = (lambda event: (one(event),)) if len(names) == 1 else one
        _VALUES[cls] = getter
    return getter


@event_class
class Event:
    t_s: float
    kind: ClassVar[str] = "event"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            values = _values(self.__class__)
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_values(self.__class__)(self))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"{self.__class__.__qualname__}({fields})"


@event_class
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
