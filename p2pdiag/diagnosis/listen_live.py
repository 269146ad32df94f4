"""`listen`'s live view: each inbound attempt told as it ends, from its own events.

`LiveListen` is fed every event as it is recorded (a Recorder sink) and sorts it into `Attempts`
(diagnosis/listen.py). When an attempt ends, `ended(cid)` tells it with the same `inbound_story`
the verdict uses, over the attempt's events and the run's context only, and places it in its
dialer's reconnect loop from each round's state, kept per dialer and brought up to date only for
rounds whose events changed. So the cost of one attempt's view does not grow with the attempts
before it, where re-diagnosing the whole trace each time did (quadratic over a long listen).

What it shows is what `attempt_steps(diagnose_listen(trace so far), cid)` and that verdict's
reconnect loops would show (tests/unit/test_listen_live.py holds them to each other); the verdict
at the end is still the whole trace's. A trace that breaks the listener's habits (see
`Attempts.irregular`, or STOPs from one dialer out of time order) is read whole instead, as before.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from p2pdiag.diagnosis.listen import Attempts, attempt_steps, diagnose_listen, inbound_story, relays_part
from p2pdiag.diagnosis.model import Step
from p2pdiag.diagnosis.query import last
from p2pdiag.diagnosis.reconnect import FAILED_ENDS, LOOP_MIN_ROUNDS, round_of
from p2pdiag.diagnosis.steps import Builder, in_time_order
from p2pdiag.diagnosis.upgrade import UpgradeStory
from p2pdiag.trace.events import Event, StopConnectReceived, WebRTCUpgradeStarted
from p2pdiag.trace.file import Header, Trace


@dataclass(frozen=True, slots=True)
class LoopPlace:
    """An attempt's place in its dialer's reconnect loop."""

    peer_id: str
    round: int  # 1 for the loop's first round
    period_s: float  # the loop's period (ReconnectLoop.period_s)


@dataclass(frozen=True, slots=True)
class AttemptView:
    connection_id: str
    steps: tuple[Step, ...]  # the relayed connection's steps with those of the WebRTC upgrade it carried
    loops: tuple[LoopPlace, ...]  # the reconnect loop it is a round of (at most one, for a listener's own ids)


class _Rounds:
    """One dialer's rounds in STOP order, whether each ended as a failed round, and one run of them
    kept ready: rounds lo..hi-1, all but the last failed, with the sorted intervals between their
    starts. Finding a round's run and the run's median period costs what the rounds added since."""

    def __init__(self) -> None:
        self.cids: list[str] = []
        self.starts: list[float] = []
        self.failed: list[bool] = []
        self.index: dict[str, int] = {}
        self.dirty: set[int] = set()
        self.in_order = True
        self.lo = self.hi = 0  # hi 0: no run kept
        self.intervals: list[float] = []

    def append(self, stop: StopConnectReceived) -> None:
        if self.starts and stop.t_s < self.starts[-1]:
            self.in_order = False  # reconnect_loops orders rounds by time; the live order would differ
        self.index[stop.connection_id] = len(self.cids)
        self.dirty.add(len(self.cids))
        self.cids.append(stop.connection_id)
        self.starts.append(stop.t_s)
        self.failed.append(False)

    def update(self, failed: Callable[[str], bool]) -> None:
        """Judge each round whose events changed again; the run kept is dropped if a round inside it
        (or the one before it) changed."""
        for n in self.dirty:
            now = failed(self.cids[n])
            if now != self.failed[n] and n < self.hi - 1:
                self.hi = 0
            self.failed[n] = now
        self.dirty.clear()

    def place(self, cid: str) -> tuple[int, int, float]:
        """The round's place in its run, the run's length, and its period (as ReconnectLoop's)."""
        i, n = self.index[cid], len(self.cids)
        if self.hi == 0 or i < self.lo:
            lo = i
            while lo > 0 and self.failed[lo - 1]:
                lo -= 1
            self.lo, self.hi, self.intervals = lo, lo + 1, []
        while True:
            while self.hi < n and self.failed[self.hi - 1]:
                bisect.insort(self.intervals, round(self.starts[self.hi] - self.starts[self.hi - 1], 3))
                self.hi += 1
            if i < self.hi:
                break
            self.lo, self.hi, self.intervals = self.hi, self.hi + 1, []
        iv = self.intervals
        median = (iv[len(iv) // 2] if len(iv) % 2 else (iv[len(iv) // 2 - 1] + iv[len(iv) // 2]) / 2) if iv else 0.0
        return i - self.lo + 1, self.hi - self.lo, round(median, 3)


class LiveListen:
    def __init__(self) -> None:
        self._attempts = Attempts()
        self._stops: dict[str, StopConnectReceived] = {}
        self._peers: dict[str, _Rounds] = {}
        self._context_seen = -1
        self._agents: dict[str, str | None] = {}
        self._relay_addrs: dict[str, str] = {}

    def add(self, event: Event) -> None:
        attempt = self._attempts.add(event)
        if isinstance(event, StopConnectReceived) and event.connection_id not in self._stops:
            self._stops[event.connection_id] = event
            self._peers.setdefault(event.source_peer_id, _Rounds()).append(event)
        elif attempt is not None and attempt in self._stops:
            rounds = self._peers[self._stops[attempt].source_peer_id]
            rounds.dirty.add(rounds.index[attempt])

    @property
    def regular(self) -> bool:
        return not self._attempts.irregular and all(r.in_order for r in self._peers.values())

    def ended(self, cid: str) -> AttemptView:
        """What to show of the inbound attempt CID as it ends."""
        if not self.regular:
            return self._from_whole_trace(cid)
        self._read_context()
        stop = self._stops.get(cid)
        if stop is None:
            return AttemptView(cid, (), ())
        events = self._attempts.events_of(cid)
        b = Builder()
        story = inbound_story(b, events, stop, self._agents, self._relay_addrs)
        upgrade = last(events, WebRTCUpgradeStarted, relayed_connection_id=cid)
        prefixes = (f"{cid}.",) + ((f"{upgrade.connection_id}.",) if upgrade and upgrade.connection_id else ())
        steps = tuple(s for s in in_time_order(b.steps) if s.key.startswith(prefixes))
        rounds = self._peers[stop.source_peer_id]
        rounds.update(lambda c: self._failed(c, events if c == cid else None, story if c == cid else None))
        place, length, period = rounds.place(cid)
        loops = (LoopPlace(stop.source_peer_id, place, period),) if length >= LOOP_MIN_ROUNDS else ()
        return AttemptView(cid, steps, loops)

    def _failed(self, cid: str, events: tuple[Event, ...] | None, story: UpgradeStory | None) -> bool:
        """Whether the round ended as a failed one (reconnect.py), reusing the story just told."""
        events = events if events is not None else self._attempts.events_of(cid)
        return round_of(events, self._stops[cid], self._agents, {cid: story} if story else {}).end in FAILED_ENDS

    def _read_context(self) -> None:
        """The relays' agents and addresses, read again when the context grew; every round is judged
        again when an agent changed (a round's end reads its relay's Limit with it)."""
        if len(self._attempts.context) == self._context_seen:
            return
        self._context_seen = len(self._attempts.context)
        agents, self._relay_addrs, _ = relays_part(Builder(), tuple(e for _, e in self._attempts.context))
        if agents != self._agents:
            self._agents = agents
            for rounds in self._peers.values():
                rounds.dirty.update(range(len(rounds.cids)))
                rounds.hi = 0

    def _from_whole_trace(self, cid: str) -> AttemptView:
        verdict = diagnose_listen(Trace(Header("listen", {}, "", ""), self._attempts.everything()))
        loops = tuple(LoopPlace(loop.peer_id, [r.connection_id for r in loop.rounds].index(cid) + 1, loop.period_s)
                      for loop in verdict.details.reconnect_loops if cid in [r.connection_id for r in loop.rounds])
        return AttemptView(cid, tuple(attempt_steps(verdict, cid)), loops)
