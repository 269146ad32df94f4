"""Running the probes: every target on its own interval, every probe under its own deadline.

One trio task a target. A probe that hangs is cut at its timeout (plus a small grace for the probe
to say where it was) and becomes a failed, timed-out observation; it never delays another
target's probe, and the next probe of the same target starts on its schedule (a probe that ran
long skips the slots it missed instead of running back to back). Start times are spread over the
first interval by a stable hash of the target, so 200 targets do not all start at once.

A probe's timeouts measure the target only while p2pdiag itself runs: `LoopLag` measures how late
the loop wakes up (an overloaded machine, a throttled or stopped process), and a probe that timed
out while p2pdiag lost a good part of its time is marked `starved_s`, which the tracker, the metrics
and `analyze` count for no target (`watch-starved`).

What probes and holders are is injected (`Probe`, `Holder`): the real ones are p2pdiag/watch/probes.py,
hold.py and gossip.py; a test can drive the schedule in trio's virtual time. Every observation and
reservation state goes through the `Tracker` first, and then, with the changes it named, to every
`Sink` (the trace, the metrics, the live view), in order, from one task at a time.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import trio

from p2pdiag.trace.events.base import ErrorKind
from p2pdiag.watch.model import AnyTarget, Observation, ReservationState
from p2pdiag.watch.tracker import Change, Tracker

TIMEOUT = ErrorKind.TIMEOUT.value
OVERRUN_GRACE_S = 1.0  # a probe's own timeout should end it; this is the scheduler's backstop
MAX_START_SPREAD_S = 60.0  # first probes are spread over min(interval, this)

Probe = Callable[[AnyTarget], Awaitable[Observation]]
ReservationCallback = Callable[[ReservationState], None]
Holder = Callable[[ReservationCallback], Awaitable[None]]  # runs until cancelled


class Sink(Protocol):
    def observed(self, obs: Observation, changes: Sequence[Change]) -> None: ...

    def reserved(self, state: ReservationState, changes: Sequence[Change]) -> None: ...


def start_offset(target: AnyTarget) -> float:
    """Where in its first interval a target's first probe falls: stable, and spread over the fleet."""
    return target.shard(10_000) / 10_000 * min(target.interval_s, MAX_START_SPREAD_S)


LAG_SAMPLE_S = 0.1  # how often the loop's lateness is sampled
LAG_NOTICED_S = 0.01  # lateness below this is the loop's ordinary jitter
STARVED_MIN_S = 0.5  # a probe that timed out while p2pdiag lost at least this much of its time...
STARVED_SHARE = 0.2  # ...and at least this share of it says nothing of its target


class LoopLag:
    """How late this trio loop wakes up: `run` sleeps LAG_SAMPLE_S at a time and keeps each wake-up's
    lateness (above LAG_NOTICED_S) for KEEP_S. Lateness is time p2pdiag could not run at all: the
    machine overloaded, the process throttled or stopped, or a long synchronous step of its own."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.samples: deque[tuple[float, float]] = deque()  # (when it woke, how late)
        self._due: float | None = None  # when the sampler should wake next

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._due = trio.current_time() + LAG_SAMPLE_S
        task_status.started()
        while True:
            await trio.sleep_until(self._due)
            now = trio.current_time()
            late = now - self._due
            if late >= LAG_NOTICED_S:
                self.samples.append((now, late))
            self._due = now + LAG_SAMPLE_S
            while self.samples and self.samples[0][0] < now - self.keep_s:
                self.samples.popleft()

    def lost_since(self, began: float) -> float:
        """Seconds the loop lost since BEGAN (trio time), the sampler's current lateness included."""
        now = trio.current_time()
        pending = max(0.0, now - self._due) if self._due is not None else 0.0
        return pending + sum(min(late, at - began) for at, late in self.samples if at > began)


def timed_out_somewhere(obs: Observation) -> bool:
    """The probe, or one of its steps or paths, ran out of time."""
    if obs.timed_out or obs.error_kind == TIMEOUT:
        return True
    return obs.peer is not None and any(d.error_kind == TIMEOUT for d in obs.peer.dials if d.tried)


def starved(obs: Observation, lost_s: float) -> Observation:
    """OBS marked as saying nothing of its target when it timed out while p2pdiag lost LOST_S of it."""
    if lost_s < max(STARVED_MIN_S, STARVED_SHARE * obs.duration_s) or not timed_out_somewhere(obs):
        return obs
    return dataclasses.replace(obs, starved_s=lost_s)


def overran(target: AnyTarget, started_unix_s: float, duration_s: float) -> Observation:
    return Observation(module=target.module, target=target.name, ok=False, started_unix_s=started_unix_s,
                       duration_s=duration_s, failed_phase=None, error_kind=TIMEOUT, timed_out=True,
                       error=f"the probe did not end within its timeout ({target.timeout_s:g} s)")


class Watch:
    def __init__(self, targets: Sequence[AnyTarget], probe: Probe, holders: Sequence[Holder] = (),
                 sinks: Sequence[Sink] = (), wall_clock: Callable[[], float] = time.time,
                 spread: bool = True) -> None:
        self.targets = tuple(targets)
        self.probe = probe
        self.holders = tuple(holders)
        self.sinks = list(sinks)
        self.tracker = Tracker()
        self.wall_clock = wall_clock
        self.spread = spread
        self.probes_done = 0
        self.lag = LoopLag(max((t.timeout_s for t in self.targets), default=0.0) + OVERRUN_GRACE_S + 1.0)

    def deliver(self, obs: Observation) -> list[Change]:
        changes = self.tracker.observe(obs)
        self.probes_done += 1
        for sink in self.sinks:
            sink.observed(obs, changes)
        return changes

    def deliver_reservation(self, state: ReservationState) -> list[Change]:
        changes = self.tracker.reservation(state)
        for sink in self.sinks:
            sink.reserved(state, changes)
        return changes

    async def run(self) -> None:
        """Until cancelled (a signal, --duration) or a bug in a probe (which propagates: exit 1)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.lag.run)  # measuring before the first probe starts
            for holder in self.holders:
                nursery.start_soon(holder, self.deliver_reservation)
            for target in self.targets:
                nursery.start_soon(self._loop, target)

    async def probe_once(self, target: AnyTarget) -> Observation:
        began, wall = trio.current_time(), self.wall_clock()
        obs: Observation | None = None
        with trio.move_on_after(target.timeout_s + OVERRUN_GRACE_S):
            obs = await self.probe(target)
        if obs is None:
            obs = overran(target, wall, trio.current_time() - began)
        return starved(obs, self.lag.lost_since(began))

    async def _loop(self, target: AnyTarget) -> None:
        if self.spread:
            await trio.sleep(start_offset(target))
        next_at = trio.current_time()
        while True:
            obs = await self.probe_once(target)
            if trio.current_effective_deadline() == -math.inf:
                return  # stopped (a signal, --duration) while it ran: the trace has ended, nothing follows
            self.deliver(obs)
            next_at += target.interval_s
            now = trio.current_time()
            if next_at < now:  # the probe ran past its slot: skip what was missed, keep the phase
                missed = (now - next_at) // target.interval_s + 1
                next_at += missed * target.interval_s
            await trio.sleep_until(next_at)
