"""watch's schedule in trio's virtual time: each target on its own interval under its own deadline,
a hung probe cut without delaying any other, and the history a trace of it gives.

The probes here are stand-ins for the probe interface (`Probe`: a target in, an Observation out),
scripted to answer, fail or hang; the real probes run against real peers in tests/live and
tests/interop."""

from __future__ import annotations

import io
import itertools
import math
import time

import pytest
import trio
import trio.testing

from p2pdiag.diagnosis import diagnose
from p2pdiag.diagnosis.model import Outcome
from p2pdiag.diagnosis.watch import History, verdict_of
from p2pdiag.trace.events.watch import TargetListed, WatchStarted
from p2pdiag.trace.file import Header, TraceWriter, loads
from p2pdiag.trace.recorder import Recorder
from p2pdiag.watch.app import what
from p2pdiag.watch.model import Module, Observation, ReservationState, UpgradeTarget
from p2pdiag.watch.runner import OVERRUN_GRACE_S, LoopLag, Watch, start_offset
from p2pdiag.watch.sinks import JsonLinesSink, TraceSink


def target(name: str, interval: float = 10.0, timeout: float = 3.0) -> UpgradeTarget:
    return UpgradeTarget(name=name, interval_s=interval, timeout_s=timeout, peer_id="12D3KooW" + name, relays=())


class Script:
    """A stand-in probe: per target a list of behaviours, one per probe ('ok', 'fail', 'hang', or seconds)."""

    def __init__(self, plan: dict[str, list]) -> None:
        self.plan = {k: list(v) for k, v in plan.items()}
        self.started: dict[str, list[float]] = {k: [] for k in plan}

    async def __call__(self, t: UpgradeTarget) -> Observation:
        self.started[t.name].append(trio.current_time())
        step = self.plan[t.name].pop(0) if self.plan[t.name] else "ok"
        if step == "hang":
            await trio.sleep(math.inf)
        if isinstance(step, float):
            await trio.sleep(step)
            step = "ok"
        await trio.sleep(0.01)
        ok = step == "ok"
        return Observation(module=Module.UPGRADE, target=t.name, ok=ok, started_unix_s=trio.current_time(),
                           duration_s=0.01, failed_phase=None if ok else "ice", error_kind=None if ok else "timeout")


class Collect:
    def __init__(self) -> None:
        self.seen: list[Observation] = []
        self.changes: list = []

    def observed(self, obs, changes):
        self.seen.append(obs)
        self.changes += changes

    def reserved(self, state, changes):
        self.changes += changes


def run_for(seconds: float, watch: Watch) -> None:
    async def main():
        with trio.move_on_after(seconds):
            await watch.run()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_each_target_on_its_own_interval_and_a_hung_probe_delays_no_other():
    fast, hung = target("fast", interval=10), target("hung", interval=10, timeout=3)
    script = Script({"fast": [], "hung": ["hang", "ok", "hang"]})
    sink = Collect()
    run_for(60, Watch([fast, hung], script, sinks=[sink], spread=False))
    starts = script.started["fast"]
    assert len(starts) == 6
    assert [round(b - a, 2) for a, b in itertools.pairwise(starts)] == [10.0] * 5  # never delayed by the hung one
    hung_obs = [o for o in sink.seen if o.target == "hung"]
    assert [o.timed_out for o in hung_obs[:3]] == [True, False, True]
    assert hung_obs[0].duration_s == pytest.approx(3 + OVERRUN_GRACE_S)
    assert "within its timeout (3 s)" in hung_obs[0].error
    # the hung target keeps its own schedule too: cut at 4 s, next probe at 10 s
    assert [round(s, 2) for s in script.started["hung"][:3]] == [0.0, 10.0, 20.0]


def test_a_probe_that_runs_past_its_slot_skips_what_it_missed():
    slow = target("slow", interval=5, timeout=4.5)
    script = Script({"slow": [12.0]})  # stand-in that ignores its own timeout: the scheduler cuts it at 5.5 s
    run_for(21, Watch([slow], script, spread=False))
    assert [round(s, 2) for s in script.started["slow"]] == [0.0, 10.0, 15.0, 20.0]


def test_first_probes_are_spread_and_stable():
    targets = [target(f"t{n}", interval=30) for n in range(200)]
    offsets = [start_offset(t) for t in targets]
    assert offsets == [start_offset(t) for t in targets]
    assert all(0 <= o < 30 for o in offsets)
    assert len({int(o) for o in offsets}) >= 25  # most of the 30 one-second slots used


def test_changes_reach_every_sink_in_order_and_the_trace_gives_the_same_verdict():
    a, b = target("a"), target("b")
    script = Script({"a": ["ok", "fail", "fail", "ok"], "b": ["ok", "ok", "fail", "fail", "fail", "fail"]})
    sink = Collect()
    rec = Recorder(clock=lambda: 0.0, keep=False)
    history = History()
    rec.add_sink(history.add)
    buf = io.StringIO()
    writer = TraceWriter(buf)
    header = Header(command="watch", options={}, started_at="2026-12-07T00:00:00.000+00:00", p2pdiag_version="t")
    writer.write_header(header)
    rec.add_sink(writer.write_event)
    json_out = io.StringIO()
    rec.record(WatchStarted, started_unix_s=1_800_000_000.0, targets=2)
    for t in (a, b):
        rec.record(TargetListed, module=t.module.value, target=t.name, interval_s=t.interval_s,
                   timeout_s=t.timeout_s, what=what(t))

    async def holder(report):
        await trio.sleep(5)
        report(ReservationState("r", up=True, at_unix_s=5))
        await trio.sleep(10)
        report(ReservationState("r", up=False, at_unix_s=15, error_kind="closed", error="relay restarted"))
        await trio.sleep(math.inf)

    watch = Watch([a, b], script, holders=[holder], sinks=[sink, TraceSink(rec), JsonLinesSink(json_out)],
                  spread=False)
    run_for(55, watch)
    kinds = [(c.target, c.kind.value) for c in sink.changes]
    assert kinds == [("a", "probe-failed"), ("r", "reservation-lost"), ("b", "probe-failed"),
                     ("a", "probe-recovered")]
    assert json_out.getvalue().count("\n") == 4 and '"change": "reservation-lost"' in json_out.getvalue()

    live = verdict_of(history)
    assert live.outcome is Outcome.FLEET_PROBLEM and int(live.exit_code) == 7
    codes = {f.code: f for f in live.findings}
    assert codes["probe-failed"].data == {"faults": 2, "open": 1}
    assert codes["reservation-lost"].data == {"faults": 1, "open": 1}
    assert live.details.faults[0].ended_t_s is not None  # a's failure came and went
    steps = {s.key: s for s in live.steps}
    assert steps["upgrade.a"].status.value == "warning" and "6 probe(s), 66.7 % ok" in steps["upgrade.a"].detail
    assert steps["upgrade.b"].status.value == "failed"

    offline = diagnose(loads(buf.getvalue(), "watch.jsonl"))  # what `analyze` does with the trace file
    assert (offline.outcome, offline.headline, [f.code for f in offline.findings]) == (
        live.outcome, live.headline, [f.code for f in live.findings])
    assert offline.facts == live.facts


def test_a_watch_that_saw_nothing_is_not_a_healthy_fleet():
    h = History()
    assert verdict_of(h).outcome is Outcome.FLEET_PROBLEM


def _watch_trace(tmp_path, name: str, ok: bool):
    from p2pdiag.trace.events.watch import Changed, Probed

    buf = io.StringIO()
    writer = TraceWriter(buf)
    writer.write_header(Header(command="watch", options={}, started_at="2026-12-07T00:00:00.000+00:00",
                               p2pdiag_version="t"))
    rec = Recorder(clock=lambda: 1.0, keep=False)
    rec.add_sink(writer.write_event)
    rec.record(WatchStarted, started_unix_s=1_800_000_000.0, targets=1, shard="1/2" if ok else "2/2")
    rec.record(TargetListed, module="relay", target=name, interval_s=30, timeout_s=10, what="R")
    rec.record(Probed, module="relay", target=name, ok=ok, duration_s=0.1)
    if not ok:
        rec.record(Changed, change="probe-failed", module="relay", target=name, detail="refused", bad=True)
    path = tmp_path / f"{name}.jsonl"
    path.write_text(buf.getvalue())
    return path


def test_analyze_of_several_watch_traces_says_a_fault_is_open_whatever_their_order(tmp_path):
    """Shards of one fleet, analyzed together: the verdict is the one with a fault still open."""
    import subprocess
    import sys

    healthy, faulty = _watch_trace(tmp_path, "r1", True), _watch_trace(tmp_path, "r2", False)
    for order in ((healthy, faulty), (faulty, healthy)):
        out = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", *map(str, order)],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 7, out.stderr
        assert '"outcome": "fleet_problem"' in out.stdout


class Stalling:
    """A stand-in probe that holds the whole loop (a blocking sleep: what an overloaded machine does to
    p2pdiag) for STALL_S, then hangs until the scheduler cuts it; or, with STALL_S 0, only hangs."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s

    async def __call__(self, t: UpgradeTarget) -> Observation:
        if self.stall_s:
            time.sleep(self.stall_s)  # noqa: ASYNC251 - the point: nothing else in the loop runs
        await trio.sleep(math.inf)
        raise AssertionError("unreachable")


def run_real(seconds: float, watch: Watch) -> None:
    async def main():
        with trio.move_on_after(seconds):
            await watch.run()

    trio.run(main)  # the real clock: lateness is real time the loop could not run


def test_a_timeout_while_p2pdiag_itself_was_held_counts_for_no_target():
    t = target("held", interval=30, timeout=0.5)
    sink, rec, history = Collect(), Recorder(keep=False), History()
    rec.add_sink(history.add)
    rec.record(WatchStarted, started_unix_s=1_800_000_000.0, targets=1)
    rec.record(TargetListed, module=t.module.value, target=t.name, interval_s=t.interval_s, timeout_s=t.timeout_s,
               what=what(t))
    run_real(2.5, Watch([t], Stalling(0.8), sinks=[sink, TraceSink(rec)], spread=False))
    [obs] = sink.seen
    assert obs.timed_out and obs.starved_s is not None
    assert obs.starved_s == pytest.approx(0.8, abs=0.25)
    # the tracker names it once, as news, and opens no fault on the target
    assert [c.kind.value for c in sink.changes] == ["watch-starved"]
    verdict = verdict_of(history)  # what analyze of the trace gives
    assert [f.code.value for f in verdict.findings] == ["watch-starved"]
    facts = history.facts()
    assert not facts.faults  # no fault opened on the target
    assert [t.probes for t in facts.targets] == [0]  # and the probe counts neither way


def test_a_timeout_while_p2pdiag_ran_freely_is_the_targets():
    t = target("hung", interval=30, timeout=0.5)
    sink = Collect()
    run_real(2.5, Watch([t], Stalling(0), sinks=[sink], spread=False))
    [obs] = sink.seen
    assert obs.timed_out and obs.starved_s is None
    assert [c.kind.value for c in sink.changes] == ["probe-failed"]


def test_lost_time_is_counted_once_and_only_inside_the_probe():
    lag = LoopLag(keep_s=10)

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lag.run)
            await trio.sleep(0.3)
            time.sleep(0.4)  # noqa: ASYNC251 - held before the probe began: not the probe's
            await trio.sleep(0.3)
            began = trio.current_time()
            assert lag.lost_since(began) < 0.05
            time.sleep(0.6)  # noqa: ASYNC251 - held during the probe
            during = lag.lost_since(began)  # read before the sampler woke: its pending lateness counts
            await trio.sleep(0.3)
            after = lag.lost_since(began)  # and after it woke: the same loss, not twice
            nursery.cancel_scope.cancel()
        return during, after

    during, after = trio.run(main)
    assert during == pytest.approx(0.6, abs=0.15)
    assert after == pytest.approx(0.6, abs=0.15)
