"""The upgrade's diagnosis, from recorded real runs (tests/record/webrtc.py re-records them).

One row per failure mode. Three modes no real peer here produces on demand (mDNS-only candidates,
no usable remote candidate, a data channel that never opens) are derived from a recorded run by
changing the events that mode changes, and say so.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from p2pdiag.diagnosis.model import Severity, StepStatus
from p2pdiag.diagnosis.upgrade import upgrade_story
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairSelected,
    DataChannelOpened,
    DtlsStateChanged,
    ErrorKind,
    PeerConnectionStateChanged,
    RemoteCandidateReceived,
    UpgradeStep,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
    WebRTCUpgradeSucceeded,
)
from p2pdiag.trace.file import load

TRACES = Path(__file__).resolve().parents[1] / "traces" / "webrtc"

# trace, relayed connection id, upgraded, finding codes exactly
TABLE = [
    ("initiator-js-ok", "relayed-1", True, set()),
    ("responder-js-ok", "inbound-1", True, set()),
    ("initiator-p2pdiag-ok", "relayed-1", True, set()),
    ("responder-p2pdiag-ok", "inbound-1", True, set()),
    ("initiator-loopback-only", "relayed-1", True, set()),
    ("initiator-js-no-signaling", "relayed-1", False, {"webrtc-signaling-unsupported"}),
    ("initiator-signaling-reset", "relayed-1", False, {"webrtc-signaling-reset"}),
    ("initiator-garbage-answer", "relayed-1", False, {"webrtc-signaling-malformed"}),
    ("initiator-offer-as-answer", "relayed-1", False, {"webrtc-signaling-malformed"}),
    ("initiator-silent-listener", "relayed-1", False, {"webrtc-signaling-timeout"}),
    ("initiator-wrong-fingerprint", "relayed-1", False, {"webrtc-dtls-failed"}),
    ("initiator-no-local-candidates", "relayed-1", False, {"webrtc-no-local-candidates"}),
    ("initiator-udp-blocked", "relayed-1", False, {"webrtc-ice-failed"}),
    ("responder-dialer-abandoned", "inbound-1", False, {"webrtc-upgrade-abandoned", "webrtc-ice-failed"}),
]


def events(name: str) -> tuple:
    return load(TRACES / f"{name}.jsonl").events


@pytest.mark.parametrize(("name", "relayed", "upgraded", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_recorded_run_gives_its_story(name, relayed, upgraded, expected):
    story = upgrade_story(events(name), relayed)
    assert story.attempted and story.upgraded is upgraded, story.summary
    assert {f.code for f in story.findings} == expected
    assert all(f.evidence and f.advice for f in story.findings)
    failed_steps = [s for s in story.steps if s.status is StepStatus.FAILED]
    assert bool(failed_steps) is not upgraded, [(s.key, s.detail) for s in failed_steps]
    starts = [s.t_s - (s.duration_s or 0) for s in story.steps if s.t_s is not None]
    assert starts == sorted(starts)
    assert all(s.key.startswith(story.connection_id + ".") for s in story.steps)


def test_every_recorded_trace_is_in_the_table():
    assert {p.stem for p in TRACES.glob("*.jsonl")} == {row[0] for row in TABLE}


def test_no_attempt_over_another_relayed_connection():
    story = upgrade_story(events("initiator-js-ok"), "relayed-2")
    assert not story.attempted and not story.steps and not story.findings


def test_the_ice_finding_lists_each_pair_with_its_state():
    story = upgrade_story(events("initiator-udp-blocked"), "relayed-1")
    (finding,) = story.findings
    assert finding.severity is Severity.ERROR and finding.title == "Every ICE candidate pair failed"
    assert any(line.endswith(": failed") and "→" in line for line in finding.evidence)
    assert "phantom" not in finding.advice and "8 s later" in finding.advice  # the js listener's side


def test_the_selected_pair_is_a_fact():
    story = upgrade_story(events("initiator-loopback-only"), "relayed-1")
    assert story.facts["webrtc_pair"].startswith("127.0.0.1:")
    assert story.summary.startswith("upgraded to WebRTC in ")


def test_the_diagnosis_imports_nothing_heavy():
    code = ("import sys, p2pdiag.diagnosis.upgrade\n"
            "print(' '.join(m for m in ('trio', 'aiortc', 'aioice', 'libp2p', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


# --- modes derived from a recorded run --------------------------------------------------------------


def _ice_failure_with(remote_change) -> tuple:
    """The UDP-blocked run, with its remote candidates changed and its pairs gone (none could form)."""
    out = []
    for e in events("initiator-udp-blocked"):
        if isinstance(e, RemoteCandidateReceived):
            e = remote_change(e)
        if isinstance(e, CandidatePairFinal):
            continue
        out.append(e)
    return tuple(out)


def test_only_unresolvable_mdns_candidates():
    derived = _ice_failure_with(lambda e: dataclasses.replace(
        e, address="3f1b8e1c-9d2a-4c6e-8f4b-2a1d7c9e0b5f.local", mdns=True, mdns_resolved=False, accepted=False,
        note="the mDNS name did not resolve within 1 s"))
    story = upgrade_story(derived, "relayed-1")
    assert {f.code for f in story.findings} == {"webrtc-mdns-unresolved"}
    assert ".local" in story.findings[0].evidence[0]


def test_no_usable_remote_candidate():
    derived = _ice_failure_with(lambda e: dataclasses.replace(e, accepted=False,
                                                              note="the ICE agent did not take it"))
    story = upgrade_story(derived, "relayed-1")
    assert {f.code for f in story.findings} == {"webrtc-no-remote-candidates"}
    remote_step = next(s for s in story.steps if s.key.endswith(".remote-candidates"))
    assert remote_step.status is StepStatus.FAILED and "NOT USED" in remote_step.detail


def test_data_channel_that_never_opens():
    """The p2pdiag-to-p2pdiag run, cut where the "init" channel would have opened."""
    out = []
    for e in events("initiator-p2pdiag-ok"):
        if isinstance(e, (DataChannelOpened, WebRTCUpgradeSucceeded)):
            break
        out.append(e)
    last = out[-1].t_s
    out.append(WebRTCUpgradeFailed(t_s=last + 5, connection_id="webrtc-1", relayed_connection_id="relayed-1",
                                   role=next(e.role for e in out if isinstance(e, WebRTCUpgradeStarted)),
                                   step=UpgradeStep.CHANNEL, error_kind=ErrorKind.TIMEOUT,
                                   reason='the "init" data channel did not open within 5 s', duration_s=5.1))
    story = upgrade_story(tuple(out), "relayed-1")
    assert {f.code for f in story.findings} == {"webrtc-channel-not-opened"}
    assert any(isinstance(e, CandidatePairSelected) for e in out)
    assert any(isinstance(e, DtlsStateChanged) for e in out)
    assert not any(isinstance(e, PeerConnectionStateChanged) and e.state.value == "failed" for e in out)
