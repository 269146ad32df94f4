"""`analyze` streams a trace (diagnosis.diagnose_stream: a watch's history built event by event, a
dial's or listen's bulk events compacted, every event indexed) and gives the verdict the whole trace
gives (diagnosis.diagnose of trace.file.load): for every recorded trace, redacted or not, and for
generated ones with the bulk kinds (pings, ping failures, traffic, pings served, holds) anywhere, in
any time order, on any connection."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pdiag.diagnosis import diagnose, diagnose_stream
from p2pdiag.diagnosis.facts import TraceNotes
from p2pdiag.diagnosis.indexed import compact
from p2pdiag.diagnosis.model import Verdict
from p2pdiag.render.json import dumps, verdict_document
from p2pdiag.trace.events import (
    CircuitTraffic,
    ConnectionEvent,
    ErrorKind,
    HoldStarted,
    PingCompleted,
    PingFailed,
    PingServed,
)
from p2pdiag.trace.events import Path as Via
from p2pdiag.trace.file import Trace, load, open_stream
from p2pdiag.trace.redact import Redactor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import analyze_large  # noqa: E402  (the bench's generators of long traces)

RECORDED = sorted(ROOT / name for name in subprocess.run(
    ["git", "ls-files", "*.jsonl"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())


def _shown(verdict: Verdict) -> tuple[str, TraceNotes | None]:
    return dumps(verdict_document(verdict)), verdict.notes


def _whole(path: Path, redactor: Redactor | None = None) -> tuple[str, TraceNotes | None]:
    trace = load(path)
    if redactor is not None:
        trace = redactor.trace(trace)
    return _shown(diagnose(trace))


def _streamed(path: Path, redactor: Redactor | None = None) -> tuple[str, TraceNotes | None]:
    stream = open_stream(path)
    header, events = stream.header, stream.events()
    if redactor is not None:
        header, events = redactor.header(header), map(redactor.event, events)
    verdict, _ = diagnose_stream(header, events, stream)
    return _shown(verdict)


def test_there_are_recorded_traces_of_each_kind():
    commands = {json.loads(p.read_text().splitlines()[0])["command"] for p in RECORDED}
    assert {"dial", "listen", "relay-check"} <= commands


@pytest.mark.parametrize("path", RECORDED, ids=[p.name for p in RECORDED])
def test_every_recorded_trace_streams_to_its_verdict(path):
    assert _streamed(path) == _whole(path)
    assert _streamed(path, Redactor(b"seed")) == _whole(path, Redactor(b"seed"))


@pytest.mark.parametrize("kind", sorted(analyze_large.KINDS))
def test_long_generated_traces_stream_to_their_verdict(tmp_path, kind):
    path = tmp_path / f"{kind}.jsonl"
    with path.open("w") as out:
        analyze_large.KINDS[kind](3000, out)
    whole = _whole(path)
    assert _streamed(path) == whole
    assert json.loads(whole[0])["steps"]  # a verdict with steps, not an error


def test_a_trace_cut_mid_line_still_streams(tmp_path):
    source = ROOT / "tests/traces/relay/dial-py-duration-cut.jsonl"
    path = tmp_path / "cut.jsonl"
    data = source.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 20])  # the last line cut after 19 bytes
    streamed = _streamed(path)
    assert streamed == _whole(path)
    assert streamed[1] is not None and streamed[1].truncated


# --- generated: the recorded dial and listen traces with bulk events added anywhere ------------------

BASES = [p for p in RECORDED if json.loads(p.read_text().splitlines()[0])["command"] in ("dial", "listen")]


def _bulk(rng: random.Random, cids: list[str], times: list[float]) -> object:
    cid = rng.choice(cids)
    t = rng.choice(times)  # a few times, shared with the recorded events: ties (with a hold too) are common
    via = rng.choice([Via.RELAYED, Via.WEBRTC])
    kind = rng.randrange(6)
    if kind == 0:
        return PingCompleted(t_s=t, connection_id=cid, path=via, rtt_s=rng.uniform(0, 0.5))
    if kind == 1:
        return PingFailed(t_s=t, connection_id=cid, path=via, error_kind=rng.choice(list(ErrorKind)),
                          error=rng.choice(["Stream closed", "timeout"]))
    if kind == 2:
        return CircuitTraffic(t_s=t, connection_id=cid, bytes_sent=rng.randrange(10**6),
                              bytes_received=rng.randrange(10**6), age_s=rng.uniform(0, max(times)))
    if kind == 3:
        return PingServed(t_s=t, connection_id=cid, count=rng.randrange(100))
    return HoldStarted(t_s=t, connection_id=cid, hold_s=rng.choice([10.0, 60.0]), ping_interval_s=1.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BASES), st.integers(0, 2**32), st.integers(0, 40), st.booleans())
def test_generated_traces_compact_to_the_same_verdict(base, seed, extra, shuffle_bulk):
    rng = random.Random(seed)
    trace = load(base)
    events = list(trace.events)
    cids = sorted({e.connection_id for e in events if isinstance(e, ConnectionEvent)}) or ["relayed-1"]
    cids = rng.sample(cids, min(len(cids), rng.choice([1, 2, len(cids)])))  # often one connection, many events
    t_max = max((e.t_s for e in events), default=1.0)
    times = [*rng.sample(sorted({e.t_s for e in events}), min(6, len(events))), -0.5, 0.0, t_max, t_max + 1.0]
    if shuffle_bulk:  # the recorded bulk events moved about too
        bulk = [e for e in events if isinstance(e, (PingCompleted, PingFailed, CircuitTraffic, PingServed))]
        events = [e for e in events if e not in bulk]
        for e in bulk:
            events.insert(rng.randrange(len(events) + 1), e)
    for _ in range(extra):
        events.insert(rng.randrange(len(events) + 1), _bulk(rng, cids, times))
    if rng.random() < 0.3:  # a copy of a recorded event, its time moved
        e = rng.choice(trace.events)
        events.insert(rng.randrange(len(events) + 1), dataclasses.replace(e, t_s=rng.uniform(0, t_max)))
    whole = Trace(trace.header, tuple(events), trace.skipped_unknown, trace.truncated)
    streamed = Trace(trace.header, compact(iter(events)), trace.skipped_unknown, trace.truncated)
    assert _shown(diagnose(streamed)) == _shown(diagnose(whole))


def test_a_compacted_kind_is_never_counted_from_what_was_kept():
    from p2pdiag.diagnosis.query import count

    events = compact([PingCompleted(t_s=float(t), connection_id="c", path=Via.RELAYED, rtt_s=0.1) for t in range(9)]
                     + [HoldStarted(t_s=4.0, connection_id="c", hold_s=9.0, ping_interval_s=1.0)]
                     + [CircuitTraffic(t_s=5.0, connection_id="c", bytes_sent=1, bytes_received=1, age_s=1.0)])
    assert len([e for e in events if isinstance(e, PingCompleted)]) == 2  # first and last
    assert count(events, PingCompleted, connection_id="c", path=Via.RELAYED) == 9
    assert count(events, PingCompleted, 4.0, connection_id="c", path=Via.RELAYED) == 5  # from the hold on
    with pytest.raises(ValueError, match=r"hold\.started"):  # counted from the hold on, not from any time
        count(events, PingCompleted, 7.0, connection_id="c")
    no_hold = compact([PingCompleted(t_s=float(t), connection_id="c", path=Via.RELAYED, rtt_s=0.1) for t in range(9)])
    assert count(no_hold, PingCompleted, 7.0, connection_id="c") == 2  # no hold read: the times are kept
    with pytest.raises(ValueError, match="compacted"):
        count(events, CircuitTraffic, connection_id="c")
    with pytest.raises(ValueError, match="compacted"):
        count(events, PingCompleted, rtt_s=0.1)


def test_analyze_streams_and_keeps_its_errors(tmp_path):
    """The command itself: a long trace's verdict, and a bad line deep in it one error line, exit 2."""
    path = tmp_path / "long.jsonl"
    with path.open("w") as out:
        analyze_large.dial_hold(2000, out)
    done = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    shown, whole = json.loads(done.stdout), json.loads(_whole(path)[0])
    assert shown["command"] == "dial" and len(shown["steps"]) > 5
    assert {k: shown[k] for k in whole if k != "p2pdiag_version"} == {
        k: v for k, v in whole.items() if k != "p2pdiag_version"}
    lines = path.read_text().splitlines(keepends=True)
    assert '"rtt_s":' in lines[1500]
    lines[1500] = lines[1500].replace('"rtt_s":', '"rtt_s":"x","y":')
    path.write_text("".join(lines))
    done = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr == f"p2pdiag: error: {path}:1501: bad event: field 'rtt_s' should be a number\n"
