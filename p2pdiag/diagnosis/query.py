"""Small queries over a tuple of events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from p2pdiag.trace.events import Event

E = TypeVar("E", bound=Event)


def all_of(events: Iterable[Event], cls: type[E], **match: Any) -> list[E]:
    return [
        e for e in events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())
    ]


def first(events: Iterable[Event], cls: type[E], **match: Any) -> E | None:
    found = all_of(events, cls, **match)
    return found[0] if found else None


def last(events: Iterable[Event], cls: type[E], **match: Any) -> E | None:
    found = all_of(events, cls, **match)
    return found[-1] if found else None
