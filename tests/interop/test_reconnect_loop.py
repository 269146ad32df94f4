"""A reconnect loop seen from `p2pdiag listen`: a dialer that redials through the relay after every failed upgrade.

Offline: `p2pdiag analyze --json` of real runs recorded by tests/record/reconnect.py
(a js-libp2p dialer in its loop mode, UDP dropped in a network namespace). Live: the same run, with
`p2pdiag listen` on a real js-libp2p relay and the js-libp2p dialer, in a namespace of its own that
drops UDP, so each upgrade genuinely fails.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, run_p2pdiag

from p2pdiag.diagnosis import diagnose
from p2pdiag.diagnosis.listen import attempt_steps
from p2pdiag.diagnosis.reconnect import LOOP_MIN_ROUNDS
from p2pdiag.trace.events import StopConnectReceived
from p2pdiag.trace.file import load

HERE = Path(__file__).resolve().parent
TRACES = HERE.parent / "traces" / "reconnect"
RUNNER = HERE.parent / "support" / "reconnect_loop.py"

# trace: inbound relayed connections, and the loop found (None: no loop): rounds, how each round's
# upgrade ended, what ended each round, confidence
TABLE = {
    # UDP dropped: each upgrade fails at ICE, the dialer hangs up 6 s in (its address-dial timeout)
    "listen-js-loop-udp-blocked": (4, (4, "failed at ice", "upgrade-failed", "certain")),
    "listen-js-one-retry-udp-blocked": (2, None),
    # the relay cuts each circuit at 3 s, while the upgrade is still under way: the dialer left it
    "listen-js-loop-relay-cut": (3, (3, "abandoned", "relay-cut", "likely")),
}


def analyze(name: str) -> dict:
    result, doc = run_p2pdiag("analyze", str(TRACES / f"{name}.jsonl"), "--json")
    assert result.returncode == 0, result.stderr
    return doc


def test_every_recorded_trace_is_in_the_table():
    assert {p.stem for p in TRACES.glob("*.jsonl")} == set(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_analyze_counts_the_rounds(name):
    inbound, expected = TABLE[name]
    doc = analyze(name)
    assert doc["outcome"] == "listened" and doc["facts"]["inbound_connections"] == inbound
    loops = doc["facts"]["reconnect_loops"]
    codes = [f["code"] for f in doc["findings"]]
    if expected is None:
        assert loops == [] and "reconnect-loop" not in codes
        return
    rounds, upgrade, ended_by, confidence = expected
    assert codes.count("reconnect-loop") == 1
    (loop,) = loops
    assert loop["rounds"] == rounds and len(loop["connection_ids"]) == rounds
    assert loop["peer_id"] in doc["facts"]["dialers"]
    assert loop["upgrades"] == [upgrade] * rounds
    assert loop["ended_by"] == [ended_by] * rounds
    assert loop["confidence"] == confidence
    # the dialer gives up at js-libp2p's 6 s address-dial timeout and waits 0.5 s: a period near 6.5 s
    assert len(loop["intervals_s"]) == rounds - 1
    assert loop["period_s"] == pytest.approx(statistics.median(loop["intervals_s"]))
    assert 6.0 <= loop["period_s"] <= 8.0, loop
    finding = next(f for f in doc["findings"] if f["code"] == "reconnect-loop")
    assert finding["severity"] == "warning" and finding["confidence"] == confidence
    assert (finding["settle"] is None) == (confidence == "certain")
    assert finding["docs"] == "docs/verdicts/reconnect-loop.md"


def test_the_threshold_is_three_rounds():
    """The one-retry trace is a real run with two rounds of the same kind: below the threshold."""
    assert LOOP_MIN_ROUNDS == 3
    verdict = diagnose(load(TRACES / "listen-js-one-retry-udp-blocked.jsonl"))
    upgrades = verdict.facts["upgrades"]
    assert sorted(upgrades) == ["inbound-1", "inbound-2"]
    assert all(s.status.value == "failed" for s in verdict.steps if s.key.endswith(".upgrade"))


def test_the_same_run_cut_short_counts_fewer_rounds():
    """The four-round run's events before round 3 began: two rounds, no loop; before round 4: three."""
    trace = load(TRACES / "listen-js-loop-udp-blocked.jsonl")
    starts = [e.t_s for e in trace.events if isinstance(e, StopConnectReceived)]
    assert len(starts) == 4
    for cut_before, expected in ((2, []), (3, [3])):
        partial = dataclasses.replace(trace, events=tuple(e for e in trace.events if e.t_s < starts[cut_before]))
        found = diagnose(partial).facts["reconnect_loops"]
        assert [f["rounds"] for f in found] == expected


def test_the_live_view_of_one_attempt_has_its_webrtc_steps():
    verdict = diagnose(load(TRACES / "listen-js-loop-udp-blocked.jsonl"))
    keys = [s.key for s in attempt_steps(verdict, "inbound-2")]
    assert {k.split(".")[0] for k in keys} == {"inbound-2", "webrtc-inbound-2"}
    assert "webrtc-inbound-2.upgrade" in keys and "inbound-2.after" in keys


@pytest.mark.interop
def test_listen_counts_a_js_dialers_reconnect_loop(node22, netns, tmp_path):
    from support.webrtc import NETNS

    trace = tmp_path / "listen.jsonl"
    argv = [sys.executable, str(RUNNER), "--relay", "js", "--rounds", "3", "--trace", str(trace)]
    command = f"{NETNS['udp-blocked']} && exec {shlex.join(argv)}"
    result = subprocess.run(["unshare", "-n", "sh", "-c", command], capture_output=True, text=True, timeout=150,
                            cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1].get("done"), (result.stdout[-2000:], result.stderr[-3000:])
    rows, summary = lines[:-1], lines[-1]
    # the dialer: three rounds, none upgraded (UDP is dropped), each hung up on the relayed connection
    assert [r["round"] for r in rows] == [1, 2, 3] and not any(r["ok"] for r in rows), rows
    assert all(r["hung_up"] >= 1 for r in rows), rows
    doc = summary["verdict"]
    assert summary["listen_exit"] == 0 and doc["outcome"] == "listened"
    (loop,) = doc["facts"]["reconnect_loops"]
    assert loop["rounds"] == 3 and loop["ended_by"] == ["upgrade-failed"] * 3
    assert "reconnect-loop" in [f["code"] for f in doc["findings"]]
    # the period the listener measured is the one the dialer lived (its own clock, another process)
    dialer_period_s = statistics.median(
        (b["started_ms"] - a["started_ms"]) / 1000 for a, b in itertools.pairwise(rows))
    assert loop["period_s"] == pytest.approx(dialer_period_s, abs=0.5)
    # the live per-attempt view (stderr) shows each round's WebRTC steps, and the loop once it is one
    live = summary["listen_stderr"]
    for n in (1, 2, 3):
        block = live.split(f"inbound-{n} ended", 1)[1].split(" ended", 1)[0]
        assert f"WebRTC upgrade (responder) over inbound-{n}" in block and "ICE connectivity checks" in block
    assert "reconnect loop: round 3" in live and "reconnect loop: round 2" not in live
    # `analyze` of the trace gives the same loop
    offline = diagnose(load(trace)).facts["reconnect_loops"]
    assert offline == doc["facts"]["reconnect_loops"]


def test_listen_names_a_relay_once_and_the_dialer_as_the_one_who_hung_up():
    """On listen, the relay's ms-unit Limit is one finding with one reading (the reservation and each
    inbound circuit name the same relay), and the hang-up after a failed upgrade is the dialer's."""
    doc = analyze("listen-js-loop-udp-blocked")
    unit = [f for f in doc["findings"] if f["code"] == "relay-limit-unit"]
    assert len(unit) == 1
    assert sum(e.startswith("Limit.duration") for e in unit[0]["evidence"]) == 1
    closed = next(f for f in doc["findings"] if f["code"] == "remote-closed-after-upgrade")
    assert closed["data"]["closed_by"] == "dialer" and closed["data"]["upgraded"] is False
