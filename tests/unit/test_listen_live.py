"""`listen`'s live view, told attempt by attempt (diagnosis/listen_live.py), shows what the whole
trace's diagnosis shows, and the indexed whole-trace diagnosis is the one read in full.

For every recorded listen trace and for long ones generated from their attempts (overlapping, one
dialer looping, fresh dialers, refreshes and pings on the relay's connection between them): at each
moment `listen` tells an attempt (its circuit's end), the live view's steps and reconnect-loop place
equal `attempt_steps` and the loops of `diagnose_listen` of the trace so far, as `listen` showed
them before; at the end each attempt's live steps equal the final verdict's; and the verdict with
`Attempts` equals the verdict that reads the whole trace for every attempt.
"""

from __future__ import annotations

import dataclasses
import io
import random

import pytest
from rich.console import Console
from support.listen_attempts import TRACES, listen_traces, long_listen, moments, shown_before, view_before

from p2pdiag.diagnosis.listen import Attempts, attempt_steps, diagnose_listen
from p2pdiag.diagnosis.listen_live import LiveListen, _Rounds
from p2pdiag.diagnosis.reconnect import ReconnectLoop, Round, RoundEnd
from p2pdiag.render.terminal import render_attempt
from p2pdiag.trace.events import (
    IdentifyCompleted,
    PingServed,
    StopConnectReceived,
    Subject,
    WebRTCUpgradeStarted,
)
from p2pdiag.trace.file import Trace, load

RECORDED = listen_traces()
GENERATED = {
    "loop": {"n": 40, "seed": 1},
    "overlapping": {"n": 40, "seed": 2, "overlap": 0.5},
    "fresh-dialers": {"n": 30, "seed": 3, "fresh_peers": True, "overlap": 0.3},
    "cut-short": {"n": 25, "seed": 4, "overlap": 0.7, "end": False},
    # one dialer's rounds ending out of order: a round still open when the next ended, then failing
    "overlapping-loop": {"n": 30, "seed": 5, "overlap": 0.6, "only": "listen-js-loop"},
    # symmetric NATs behind a js relay whose 3000 (ms) Limit only its agent tells: the finding reads it
    "js-relay-symmetric": {"n": 20, "seed": 6, "only": "symmetric", "start": TRACES / "reconnect" /
                           "listen-js-loop-relay-cut.jsonl"},
}


def check_live(trace: Trace, indexed: bool) -> int:
    live = LiveListen()
    told = dict(moments(trace.events))
    for i, event in enumerate(trace.events):
        live.add(event)
        if i in told:
            so_far = dataclasses.replace(trace, events=trace.events[:i + 1])
            assert live.ended(told[i]) == view_before(so_far, told[i], indexed), (i, told[i])
    final = diagnose_listen(trace)
    for stop in (e for e in trace.events if isinstance(e, StopConnectReceived)):
        assert live.ended(stop.connection_id).steps == tuple(attempt_steps(final, stop.connection_id))
    assert live.regular
    return len(told)


def test_there_are_recorded_listen_traces_with_attempts():
    assert len(RECORDED) >= 20
    assert sum(any(isinstance(e, StopConnectReceived) for e in load(p).events) for p in RECORDED) >= 20


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_live_view_of_a_recorded_trace_is_the_whole_traces(path):
    trace = load(path)
    check_live(trace, indexed=False)
    assert diagnose_listen(trace) == diagnose_listen(trace, indexed=False)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_live_view_of_a_long_listen_is_the_whole_traces(name):
    trace = long_listen(**GENERATED[name])
    assert check_live(trace, indexed=True) >= 20
    assert diagnose_listen(trace) == diagnose_listen(trace, indexed=False)


def test_a_long_loop_is_placed_round_by_round():
    """One dialer's attempts that all fail make one loop; each attempt's place in it is its round."""
    trace = long_listen(30, seed=5)
    live = LiveListen()
    places = {}
    told = dict(moments(trace.events))
    for i, event in enumerate(trace.events):
        live.add(event)
        if i in told:
            places[told[i]] = live.ended(told[i]).loops
    final = diagnose_listen(trace).details.reconnect_loops
    assert final and max(len(loop.rounds) for loop in final) >= 5
    placed = [p for loops in places.values() for p in loops]
    assert max(p.round for p in placed) >= 5


def test_the_indexed_verdict_is_the_whole_traces_for_every_prefix():
    trace = long_listen(12, seed=6, overlap=0.6)
    for end in range(0, len(trace.events), 7):
        prefix = dataclasses.replace(trace, events=trace.events[:end])
        assert diagnose_listen(prefix) == diagnose_listen(prefix, indexed=False), end


def test_an_attempt_reads_its_own_events_and_the_context_only():
    trace = long_listen(6, seed=7, overlap=0.5)
    attempts = Attempts.of_trace(trace.events)
    for stop in (e for e in trace.events if isinstance(e, StopConnectReceived)):
        cid = stop.connection_id
        wids = {e.connection_id for e in trace.events
                if isinstance(e, WebRTCUpgradeStarted) and e.relayed_connection_id == cid}
        ids = {cid} | wids
        own = attempts.events_of(cid)
        for e in own:
            connection = getattr(e, "connection_id", None)
            relay_identify = isinstance(e, IdentifyCompleted) and e.subject is Subject.RELAY
            assert (connection is None or connection in ids or relay_identify
                    or getattr(e, "relayed_connection_id", None) == cid), e
        assert not any(isinstance(e, PingServed) and e.connection_id == "direct" for e in own)
        assert [e for e in trace.events if getattr(e, "connection_id", None) in ids] == [
            e for e in own if getattr(e, "connection_id", None) in ids]
    assert attempts.everything() == trace.events


def test_a_trace_out_of_the_listeners_habits_is_read_whole():
    """Two STOPs with one connection id (no listener records that): the live view reads the whole
    trace, and still shows what the whole trace's diagnosis shows."""
    trace = long_listen(5, seed=8)
    stops = [e for e in trace.events if isinstance(e, StopConnectReceived)]
    twice = dataclasses.replace(stops[1], connection_id=stops[0].connection_id)
    events = tuple(e if e is not stops[1] else twice for e in trace.events)
    live = LiveListen()
    for e in events:
        live.add(e)
    assert not live.regular
    doubled = dataclasses.replace(trace, events=events)
    for cid in {s.connection_id for s in stops}:
        assert live.ended(cid) == view_before(doubled, cid, indexed=False)


@pytest.mark.parametrize("color", [False, True])
def test_the_live_view_prints_what_listen_printed(color):
    """Rendered (rich, with colour or not), each attempt's view is the text `listen` printed before."""
    trace = long_listen(20, seed=1)
    live = LiveListen()
    told = dict(moments(trace.events))
    loops = 0
    for i, event in enumerate(trace.events):
        live.add(event)
        if i in told:
            new, old = (Console(file=io.StringIO(), highlight=False, soft_wrap=True, width=120,
                                force_terminal=color) for _ in range(2))
            view = live.ended(told[i])
            loops += bool(view.loops)
            render_attempt(view, new)
            shown_before(dataclasses.replace(trace, events=trace.events[:i + 1]), told[i], old)
            assert new.file.getvalue() == old.file.getvalue()
            assert ("\x1b[" in new.file.getvalue()) is color
    assert loops >= 3


def brute_place(failed: list[bool], starts: list[float], i: int) -> tuple[int, int, float]:
    """Attempt I's place in its run of rounds as reconnect_loops cuts them, the run's length and period."""
    lo = i
    while lo > 0 and failed[lo - 1]:
        lo -= 1
    hi = i
    while hi < len(failed) - 1 and failed[hi]:
        hi += 1
    rounds = tuple(Round(str(k), starts[k], "", RoundEnd.UPGRADE_FAILED if failed[k] else RoundEnd.OPEN, None)
                   for k in range(lo, hi + 1))
    return i - lo + 1, len(rounds), ReconnectLoop("p", rounds).period_s if len(rounds) > 1 else 0.0


def test_a_dialers_rounds_are_placed_as_reconnect_loops_places_them():
    """_Rounds keeps one run ready; whatever order rounds come, change their ends and are asked about
    in, each place, length and period is the one found from scratch."""
    rng = random.Random(13)
    asked = 0
    for _ in range(300):
        rounds, failed, starts = _Rounds(), [], []
        for _ in range(60):
            action = rng.random()
            if action < 0.3 or not failed:
                starts.append(round((starts[-1] if starts else 0.0) + rng.uniform(0.5, 9.0), 3))
                failed.append(rng.random() < 0.8)
                rounds.append(StopConnectReceived(t_s=starts[-1], relay_peer_id="r", source_peer_id="p",
                                                  connection_id=str(len(failed) - 1), announced_duration_s=None,
                                                  announced_data_bytes=None))
            elif action < 0.6:
                k = rng.randrange(len(failed))
                failed[k] = not failed[k]
                rounds.dirty.add(k)
            else:
                i = rng.randrange(len(failed))
                rounds.update(lambda cid, ends=failed: ends[int(cid)])
                assert rounds.place(str(i)) == brute_place(failed, starts, i)
                asked += 1
    assert asked > 5000
