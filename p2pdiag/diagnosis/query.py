"""Small queries over a tuple of events (indexed, when it is `indexed.Events`: the same answers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from p2pdiag.diagnosis.indexed import Events
from p2pdiag.trace.events import ConnectionEvent, Event

E = TypeVar("E", bound=Event)


def all_of(events: Iterable[Event], cls: type[E], **match: Any) -> list[E]:
    if isinstance(events, Events):
        return events.select(cls, match)  # type: ignore[return-value]
    return [
        e for e in events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())
    ]


def first(events: Iterable[Event], cls: type[E], **match: Any) -> E | None:
    found = all_of(events, cls, **match)
    return found[0] if found else None


def last(events: Iterable[Event], cls: type[E], **match: Any) -> E | None:
    found = all_of(events, cls, **match)
    return found[-1] if found else None


def count(events: Iterable[Event], cls: type[Event], since_t_s: float | None = None, **match: Any) -> int:
    """How many CLS events match (at or after SINCE_T_S when given). Ask it of the trace's events, not of
    a selection of them: a streamed trace keeps a few of its bulk events and counts the rest."""
    if isinstance(events, Events):
        return events.count(cls, since_t_s, match)
    return sum(1 for e in all_of(events, cls, **match) if since_t_s is None or e.t_s >= since_t_s)


def of_connection(events: Iterable[Event], connection_id: str) -> Sequence[ConnectionEvent]:
    """The events about one connection, in order."""
    return all_of(events, ConnectionEvent, connection_id=connection_id)
