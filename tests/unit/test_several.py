"""`p2pdiag analyze FILE...`: several recorded inputs of one connection on one timeline
(p2pdiag/diagnosis/several.py; tests/record/jslog_listener.py records the pairs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from p2pdiag.diagnosis import several
from p2pdiag.diagnosis.jslog import diagnose_jslog
from p2pdiag.diagnosis.model import Outcome
from p2pdiag.evidence import jslog

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "tests" / "traces" / "jslog"
LISTENER, DIALER = LOGS / "listen-upgraded.log", LOGS / "dial-to-listen-upgraded.log"
TRACE, JS_DIALER = LOGS / "listen-p2pdiag-beside-js-dialer.jsonl", LOGS / "dial-to-p2pdiag-listen.log"
PEER = re.compile(r"12D3KooW[1-9A-HJ-NP-Za-km-z]{44}")


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", *args], capture_output=True, text=True,
                          cwd=ROOT, check=False)


def source(path: Path, lines: list[bytes] | None = None) -> several.Source:
    log = jslog.load(path) if lines is None else jslog.read(enumerate(lines, start=1), str(path))
    return several.from_log(str(path), log, diagnose_jslog(log))


def shifted(path: Path, seconds: float) -> list[bytes]:
    """The log with every ISO time moved: the same run, written by a node whose clock is off."""
    def move(m: re.Match[bytes]) -> bytes:
        t = datetime.fromisoformat(m[1].decode()) + timedelta(seconds=seconds)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].encode() + b"Z"
    return [re.sub(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)", move, line) for line in path.read_bytes().splitlines()]


def test_the_two_sides_of_one_connection_agree_on_one_clock():
    verdict = several.combine([source(LISTENER), source(DIALER)])
    assert verdict.outcome is Outcome.UPGRADED  # the dialing side's: the connection's verdict
    first, second = verdict.facts["timeline"]
    assert first["offset_s"] == 0.0 and first["aligned_by"] == "wall clock"
    assert second["offset_s"] > 0 and "matched by both peer ids" in second["aligned_by"]
    agree = float(re.search(r"agree within ([\d.]+) s", second["aligned_by"])[1])
    assert agree < 0.1  # one machine, one clock: the two moments are milliseconds apart
    keys = [s.key for s in verdict.steps]
    assert any(k.startswith("input1.") for k in keys) and any(k.startswith("input2.") for k in keys)
    times = [s.t_s for s in verdict.steps if s.t_s is not None]
    assert times == sorted(times)
    # the listener's inbound connection sits on the timeline where the dialer's HOP CONNECT came back
    inbound = next(s for s in verdict.steps if s.key.endswith(".inbound") and s.key.startswith("input1."))
    hop = next(s for s in verdict.steps if s.key == "input2.hop.connect")
    assert abs(inbound.t_s - hop.t_s) < 0.1


@pytest.mark.parametrize("skew", [42.0, -3600.0])
def test_a_clock_that_is_off_is_read_from_the_connection_and_corrected(skew):
    honest = several.combine([source(LISTENER), source(DIALER)]).facts["timeline"][1]["offset_s"]
    verdict = several.combine([source(LISTENER), source(DIALER, shifted(DIALER, skew))])
    placed = verdict.facts["timeline"][1]
    assert ("ahead" if skew > 0 else "behind") in placed["aligned_by"] and "moved by that" in placed["aligned_by"]
    # where it was before its clock went wrong, less the milliseconds between the two sides' moments
    assert placed["offset_s"] == pytest.approx(honest, abs=0.05) and placed["offset_s"] != pytest.approx(honest + skew)


def test_a_p2pdiag_trace_beside_a_js_dialer_log():
    result = analyze("--json", str(TRACE), str(JS_DIALER))
    doc = json.loads(result.stdout)
    assert result.returncode == doc["exit_code"] == 3, result.stderr  # the js dialer's: relayed only
    assert doc["facts"]["primary"] == str(JS_DIALER)
    kinds = [i["kind"] for i in doc["facts"]["inputs"]]
    assert kinds == ["p2pdiag trace", "js-libp2p debug log"]
    assert [i["outcome"] for i in doc["facts"]["inputs"]] == ["listened", "relayed_only"]
    assert "agree within" in doc["facts"]["timeline"][1]["aligned_by"]


def test_unrelated_inputs_are_placed_by_their_clocks_alone():
    verdict = several.combine([source(LOGS / "dial-no-reservation.log"), source(LISTENER)])
    assert [p["aligned_by"] for p in verdict.facts["timeline"]] == ["wall clock", "wall clock"]
    assert verdict.outcome is Outcome.UNREACHABLE


def test_a_log_without_times_is_not_placed_and_the_verdict_says_so():
    verdict = several.combine([source(LISTENER), source(LOGS / "dial-no-reservation-colour-no-trace.log")])
    placed = verdict.facts["timeline"][1]
    assert placed["offset_s"] is None and placed["aligned_by"].startswith("not placed")
    assert "not placed on it" in verdict.headline


def test_redaction_across_inputs_gives_a_peer_one_placeholder():
    """One Redactor for every input: the relay and both peers keep one placeholder across the two logs,
    so the connection still matches from both sides."""
    plain = json.loads(analyze("--json", str(LISTENER), str(DIALER)).stdout)
    result = analyze("--json", "--redact", str(LISTENER), str(DIALER))
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["facts"]["trace_redacted"] is True
    originals = set(PEER.findall(LISTENER.read_text() + DIALER.read_text()))
    assert not originals & set(PEER.findall(result.stdout))
    listener, dialer = (i["facts"] for i in doc["facts"]["inputs"])
    assert listener["reservations"][0]["relay_peer_id"] in dialer["relay"]  # the same relay, one placeholder
    assert listener["dialers"][0] not in originals
    assert "matched by both peer ids" in doc["facts"]["timeline"][1]["aligned_by"]
    assert [f["code"] for f in doc["findings"]] == [f["code"] for f in plain["findings"]]


def test_bad_inputs_among_several_are_one_line():
    result = analyze(str(LISTENER), str(ROOT / "README.md"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "README.md" in result.stderr
    result = analyze(*[str(LISTENER)] * 17)
    assert result.returncode == 2 and "at most 16" in result.stderr and "Traceback" not in result.stderr


def test_the_two_ends_of_an_upgrade_on_a_network_that_drops_udp():
    """The dialer gave up at its timeout (ICE found no path); the listener logged the connection upgraded
    anyway, after the dialer's reset: together, one verdict with both sides' findings."""
    verdict = several.combine([source(LOGS / "listen-webrtc-udp-blocked.log"),
                               source(LOGS / "dial-webrtc-udp-blocked.log")])
    assert verdict.outcome is Outcome.RELAYED_ONLY
    codes = {f.code for f in verdict.findings}
    assert {"webrtc-ice-failed", "webrtc-upgrade-abandoned"} <= codes
    assert "agree within" in verdict.facts["timeline"][1]["aligned_by"]
    # on the timeline the listener's abandoned answer comes after the dialer's give-up, not before it
    gave_up = next(s for s in verdict.steps if s.key == "input2.upgrade")
    answered = next(s for s in verdict.steps if s.key.startswith("input1.") and s.key.endswith(".upgraded"))
    assert 0 <= answered.t_s - gave_up.t_s < 1


def test_a_webrtc_internals_dump_beside_a_log_is_placed_by_its_clock():
    dump = ROOT / "tests" / "traces" / "webrtc-internals" / "udp-blocked.json.gz"
    result = analyze("--json", str(dump), str(LISTENER))
    doc = json.loads(result.stdout)
    assert result.returncode == doc["exit_code"], result.stderr
    assert [i["kind"] for i in doc["facts"]["inputs"]] == ["chrome://webrtc-internals dump", "js-libp2p debug log"]
    assert [p["aligned_by"] for p in doc["facts"]["timeline"]] == ["wall clock", "wall clock"]
    assert "udp-blocked-local" in {f["code"] for f in doc["findings"]}
    redacted = analyze("--json", "--redact", str(dump), str(LISTENER))
    assert redacted.returncode == result.returncode and json.loads(redacted.stdout)["facts"]["trace_redacted"]
