"""A trace's events as the diagnosis reads them from a file it streams: indexed, and compacted to
what the verdict depends on.

`Events` is a tuple of events in file order (so anything that iterates a trace's events still
can) with an index: `query.all_of`/`first`/`last` on it look events up by type and by the values
they match on instead of scanning every event each time (a long `listen` asked for each inbound
connection's events by scanning all of them: quadratic).

`compact` keeps every event but the bulk kinds a long run writes every second, and of those only
what the diagnosis reads (dial.py, listen.py, relayed.py, upgrade.py, network.py and reconnect.py):

- `circuit.traffic`, `ping.served`: only `last` of a connection is read, and `served[-1]` (its
  count and time) when there are any: the last of each connection is kept.
- `ping.completed`, `ping.failed`, per connection and path: the first (the first ping's round trip,
  the first failure), the earliest in time (was any ping before a moment), the latest in time (the
  last attempt: the connection at the end), the last; and how many there were, in all and from the
  connection's `hold.started` on (`query.count`). Until that hold's event has been read, the times
  of a connection's pings are kept (8 bytes each) to count them against it; p2pdiag writes the hold
  before its pings, so in its own traces that is the ping or two before the hold.

Any other question about a compacted kind (a count of `circuit.traffic`, a count matched on another
field) is refused with an error, not answered from the kept ones: a diagnosis that starts asking one
must say how it is kept here. tests/unit/test_analyze_stream.py holds a compacted trace's verdict to
the whole trace's, for every recorded trace and for generated ones.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from p2pdiag.trace.events import CircuitTraffic, Event, HoldStarted, PingCompleted, PingFailed, PingServed

_COUNTED = (PingCompleted, PingFailed)
_LAST_ONLY = (CircuitTraffic, PingServed)


class _Pings:
    """The pings (or ping failures) of one connection over one path, as far as the diagnosis reads them."""

    __slots__ = ("first", "high", "last", "low", "n", "n_since", "pending", "threshold")

    def __init__(self, threshold: float | None) -> None:
        self.first: tuple[int, Event] | None = None
        self.low: tuple[int, Event] | None = None  # the earliest in time (the first of them in the file)
        self.high: tuple[int, Event] | None = None  # the latest in time (the last of them in the file)
        self.last: tuple[int, Event] | None = None
        self.n = 0
        self.threshold = threshold  # the t_s of the connection's hold.started, once read
        self.n_since = 0  # how many at or after it
        self.pending: array[float] | None = array("d") if threshold is None else None

    def add(self, i: int, e: Event) -> None:
        t = e.t_s
        self.n += 1
        if self.first is None:
            self.first = self.low = self.high = (i, e)
        else:
            if t < self.low[1].t_s:  # type: ignore[index]
                self.low = (i, e)
            if t >= self.high[1].t_s:  # type: ignore[index]
                self.high = (i, e)
        self.last = (i, e)
        if self.pending is not None:
            self.pending.append(t)
        elif t >= self.threshold:  # type: ignore[operator]
            self.n_since += 1

    def hold(self, t: float) -> None:
        if self.pending is None:
            return
        self.threshold = t
        self.n_since = sum(1 for x in self.pending if x >= t)
        self.pending = None

    def count(self, since_t_s: float | None) -> int:
        if since_t_s is None:
            return self.n
        if since_t_s == self.threshold:
            return self.n_since
        if self.pending is not None:
            return sum(1 for x in self.pending if x >= since_t_s)
        raise ValueError(f"pings counted from t={since_t_s}: only from the connection's hold.started are counted")

    def kept(self) -> list[tuple[int, Event]]:
        return list({p[0]: p for p in (self.first, self.low, self.high, self.last) if p is not None}.values())


class Events(tuple):
    """Events in file order, indexed by type and by the values they are matched on."""

    _pings: Mapping[tuple[type, str, Any], _Pings]
    _compacted: tuple[type, ...]
    _types: dict[type, list[tuple[int, Event]]] | None
    _of: dict[type, list[Event]]
    _index: dict[tuple[type, tuple[str, ...]], dict[tuple[Any, ...], list[Event]]]

    def __new__(cls, events: Iterable[Event], pings: Mapping[tuple[type, str, Any], _Pings] | None = None,
                compacted: tuple[type, ...] = ()) -> Events:
        self = super().__new__(cls, events)
        self._pings = pings or {}
        self._compacted = compacted
        self._types = None
        self._of = {}
        self._index = {}
        return self

    def of_type(self, cls: type) -> list[Event]:
        """Every event that is a CLS, in file order."""
        found = self._of.get(cls)
        if found is None:
            if self._types is None:
                self._types = {}
                for i, e in enumerate(self):
                    self._types.setdefault(type(e), []).append((i, e))
            lists = [v for t, v in self._types.items() if issubclass(t, cls)]
            found = self._of[cls] = [e for _, e in (lists[0] if len(lists) == 1 else heapq.merge(*lists))]
        return found

    def select(self, cls: type, match: dict[str, Any]) -> list[Event]:
        """What `all_of(self, cls, **match)` gives on a plain tuple of the same events."""
        if not match:
            return list(self.of_type(cls))
        keys = tuple(match)
        index = self._index.get((cls, keys))
        if index is None:
            index = self._index[(cls, keys)] = {}
            for e in self.of_type(cls):
                index.setdefault(tuple(getattr(e, k) for k in keys), []).append(e)
        try:
            return list(index.get(tuple(match.values()), ()))
        except TypeError:  # an unhashable value to match: compare one by one, as a plain tuple would
            return [e for e in self.of_type(cls) if all(getattr(e, k) == v for k, v in match.items())]

    def count(self, cls: type, since_t_s: float | None, match: dict[str, Any]) -> int:
        """How many CLS events matching MATCH the whole trace had (at or after SINCE_T_S, when given)."""
        if cls in _COUNTED and self._compacted:
            if set(match) - {"connection_id", "path"}:
                raise ValueError(f"{cls.__name__} is compacted: counted by connection and path only")
            return sum(g.count(since_t_s) for (t, cid, path), g in self._pings.items()
                       if t is cls and match.get("connection_id", cid) == cid and match.get("path", path) == path)
        if any(issubclass(c, cls) for c in self._compacted):
            raise ValueError(f"{cls.__name__}: compacted events are not counted")
        return sum(1 for e in self.select(cls, match) if since_t_s is None or e.t_s >= since_t_s)


def compact(events: Iterable[Event]) -> Events:
    """EVENTS read once, the bulk kinds kept as the module's docstring says, the rest all kept."""
    kept: list[tuple[int, Event]] = []
    last_only: dict[tuple[type, str], tuple[int, Event]] = {}
    pings: dict[tuple[type, str, Any], _Pings] = {}
    holds: dict[str, float] = {}
    for i, e in enumerate(events):
        t = type(e)
        if t is PingCompleted or t is PingFailed:
            key = (t, e.connection_id, e.path)  # type: ignore[attr-defined]
            group = pings.get(key)
            if group is None:
                group = pings[key] = _Pings(holds.get(e.connection_id))  # type: ignore[attr-defined]
            group.add(i, e)
        elif t is CircuitTraffic or t is PingServed:
            last_only[(t, e.connection_id)] = (i, e)  # type: ignore[attr-defined]
        else:
            kept.append((i, e))
            if t is HoldStarted and e.connection_id not in holds:  # type: ignore[attr-defined]
                held = holds[e.connection_id] = e.t_s  # type: ignore[attr-defined]
                for (_, cid, _), group in pings.items():
                    if cid == e.connection_id:  # type: ignore[attr-defined]
                        group.hold(held)
    kept.extend(last_only.values())
    for group in pings.values():
        kept.extend(group.kept())
    kept.sort(key=lambda p: p[0])
    return Events((e for _, e in kept), pings, _COUNTED + _LAST_ONLY)


def indexed(events: Sequence[Event]) -> Events:
    """EVENTS, all of them, indexed."""
    return events if isinstance(events, Events) else Events(events)
