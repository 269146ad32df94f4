"""The one place probes hand their events to: stamps time, keeps the list, streams to sinks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from p2pdiag.trace.events import Event

E = TypeVar("E", bound=Event)

Clock = Callable[[], float]


class Recorder:
    """Collects events in order. `clock` is injected so tests can run on virtual time."""

    def __init__(self, clock: Clock = time.monotonic, keep: bool = True) -> None:
        """KEEP False: events go to the sinks only (a long `watch` would otherwise grow without end);
        the run's end is kept, so `probes.run.ended` still answers."""
        self._clock = clock
        self._keep = keep
        self._start = clock()
        self._events: list[Event] = []
        self._sinks: list[Callable[[Event], None]] = []

    def now(self) -> float:
        return self._clock() - self._start

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        self._sinks.append(sink)

    def record(self, cls: type[E], **fields: Any) -> E:
        event = cls(t_s=round(self.now(), 6), **fields)
        if self._keep or event.kind in ("run.finished", "run.interrupted"):
            self._events.append(event)
        for sink in self._sinks:
            sink(event)
        return event

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)
