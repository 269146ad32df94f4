"""The diagnosis of recorded real runs (tests/record/relay.py re-records them): one row per failure mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pdiag.diagnosis import diagnose
from p2pdiag.diagnosis.model import Outcome, StepStatus
from p2pdiag.exitcodes import ExitCode
from p2pdiag.render.json import verdict_document
from p2pdiag.trace.file import load

TRACES = Path(__file__).resolve().parent.parent / "traces" / "relay"

# trace file, outcome, finding codes that must be there, codes that must not
TABLE = [
    ("dial-py-relay-ok", Outcome.RELAYED_ONLY, {"peer-no-webrtc-signaling", "relay-limited"},
     {"relay-limit-unit", "remote-closed-relayed"}),
    ("dial-relay-refused", Outcome.UNREACHABLE, {"relay-unreachable"}, {"step-timeout"}),
    ("dial-relay-silent", Outcome.UNREACHABLE, {"relay-unreachable", "step-timeout"}, set()),
    ("dial-wrong-relay-id", Outcome.UNREACHABLE, {"relay-wrong-peer-id"}, {"relay-unreachable"}),
    ("dial-no-reservation", Outcome.UNREACHABLE, {"hop-no-reservation"}, {"relay-limited"}),
    ("dial-py-duration-cut", Outcome.RELAYED_ONLY, {"relay-cut-duration"}, {"relay-cut-data", "relay-limit-unit"}),
    ("dial-py-data-cut", Outcome.RELAYED_ONLY, {"relay-cut-data"}, {"relay-cut-duration"}),
    ("dial-js-relay-duration-cut", Outcome.RELAYED_ONLY, {"relay-limit-unit", "relay-cut-duration"},
     {"peer-no-webrtc-signaling", "relay-cut-unexplained"}),
    ("dial-interrupted", Outcome.INTERRUPTED, {"run-interrupted"}, set()),
    ("listen-py-relay", Outcome.LISTENED, set(), {"remote-closed-relayed", "peer-no-webrtc-signaling"}),
    # the relay takes the TCP connection and never speaks; --timeout ends listen before relay-connect's timeout
    ("listen-relay-silent", Outcome.UNREACHABLE, {"relay-unreachable"}, {"run-interrupted", "step-timeout"}),
]


@pytest.mark.parametrize(("name", "outcome", "present", "absent"), TABLE, ids=[row[0] for row in TABLE])
def test_recorded_trace_gives_its_verdict(name, outcome, present, absent):
    verdict = diagnose(load(TRACES / f"{name}.jsonl"))
    codes = {f.code for f in verdict.findings}
    assert verdict.outcome is outcome
    assert present <= codes, codes
    assert not (absent & codes), codes
    # every finding carries evidence and advice a person can act on
    assert all(f.evidence and f.advice for f in verdict.findings)


def test_exit_codes_follow_the_outcome():
    assert diagnose(load(TRACES / "dial-py-relay-ok.jsonl")).exit_code is ExitCode.RELAYED_ONLY
    assert diagnose(load(TRACES / "dial-relay-refused.jsonl")).exit_code is ExitCode.UNREACHABLE
    assert diagnose(load(TRACES / "dial-interrupted.jsonl")).exit_code is ExitCode.INTERRUPTED
    assert diagnose(load(TRACES / "listen-py-relay.jsonl")).exit_code is ExitCode.OK


def test_every_trace_in_the_folder_is_in_the_table():
    assert {p.stem for p in TRACES.glob("*.jsonl")} == {row[0] for row in TABLE}


def test_steps_are_in_time_order():
    for name, *_ in TABLE:
        steps = diagnose(load(TRACES / f"{name}.jsonl")).steps
        starts = [s.t_s - (s.duration_s or 0) for s in steps if s.t_s is not None]
        assert starts == sorted(starts), name


def test_cut_step_reports_when_and_after_how_many_bytes():
    verdict = diagnose(load(TRACES / "dial-py-data-cut.jsonl"))
    after = next(s for s in verdict.steps if s.key.endswith(".after"))
    assert after.status is StepStatus.FAILED
    assert "KiB" in after.detail and "s after it opened" in after.detail
    cut = next(f for f in verdict.findings if f.code == "relay-cut-data")
    assert "announced data limit of 11.7 KiB" in cut.evidence[0]


def test_js_duration_cut_is_matched_against_the_millisecond_reading():
    verdict = diagnose(load(TRACES / "dial-js-relay-duration-cut.jsonl"))
    cut = next(f for f in verdict.findings if f.code == "relay-cut-duration")
    assert "duration limit of 4 s" in cut.evidence[0]
    unit = next(f for f in verdict.findings if f.code == "relay-limit-unit")
    assert "4000" in unit.evidence[0]



# every trace recorded from a real run, in every folder (dial, listen, WebRTC, lab, relay-check)
ALL_RECORDED = sorted(TRACES.parent.rglob("*.jsonl"))


@pytest.mark.parametrize("path", ALL_RECORDED, ids=lambda p: str(p.relative_to(TRACES.parent)))
def test_a_finding_that_is_not_certain_says_what_would_settle_it(path):
    doc = verdict_document(diagnose(load(path)))  # as --json gives it; relay-check's findings are there too
    unsettled = [f["code"] for f in doc["findings"] if f["confidence"] != "certain" and not f.get("settle")]
    assert not unsettled


def test_the_recorded_traces_have_findings_that_are_not_certain():
    """The check above is not vacuous: the recorded runs do give findings p2pdiag is not sure of."""
    unsure = {f.code for path in ALL_RECORDED for f in diagnose(load(path)).findings if f.confidence.value != "certain"}
    assert {"relay-cut-data", "relay-cut-duration", "relay-limit-unit"} <= unsure
