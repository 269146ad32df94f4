"""The network cause of a failed ICE attempt (p2pdiag/diagnosis/network.py), from real runs in the lab.

tests/record/network.py records each case in p2pdiag.lab (real NATs, coturn, the py-libp2p
relay, `p2pdiag dial` on LAN a and `p2pdiag listen` on LAN b) and keeps both sides' traces. One
row per trace; one mode no lab run gives on failure (a symmetric mapping seen directly) is derived
from a recorded run and says so.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from p2pdiag.diagnosis.model import Confidence
from p2pdiag.diagnosis.network import (
    EIM_SEEN,
    PORT_CHANGED,
    PORT_KEPT,
    SYMMETRIC,
    UNKNOWN,
    is_private,
    mapping_from_srflx,
)
from p2pdiag.diagnosis.upgrade import upgrade_story
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairSelected,
    CandidatePairState,
    CandidateType,
    CircuitSecured,
    ErrorKind,
    GatheringEnd,
    IceServerOutcome,
    IceServerQueried,
    LocalCandidateGathered,
    RemoteCandidateReceived,
    UpgradeStep,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
    WebRTCUpgradeSucceeded,
)
from p2pdiag.trace.file import load

TRACES = Path(__file__).resolve().parents[1] / "traces" / "network"

NETWORK_CODES = {"udp-blocked-local", "udp-blocked-remote", "nat-mapping-symmetric", "nat-mapping-unknown",
                 "nat-probed", "direct-impossible-symmetric-nat", "turn-allocation-failed", "turn-checks-failed"}

# trace (LAN a runs dial, LAN b runs listen), upgraded, the network codes exactly, {code: confidence}
TABLE = [
    ("dialer-udp-blocked-dial", False, {"udp-blocked-local"}, {"udp-blocked-local": Confidence.LIKELY}),
    ("dialer-udp-blocked-listen", False, {"udp-blocked-remote"}, {"udp-blocked-remote": Confidence.POSSIBLE}),
    ("listener-udp-blocked-dial", False, {"udp-blocked-remote"}, {"udp-blocked-remote": Confidence.LIKELY}),
    ("listener-udp-blocked-listen", False, {"udp-blocked-local"}, {"udp-blocked-local": Confidence.LIKELY}),
    ("symmetric-symmetric-dial", False, {"direct-impossible-symmetric-nat"},
     {"direct-impossible-symmetric-nat": Confidence.LIKELY}),
    ("symmetric-symmetric-listen", False, {"direct-impossible-symmetric-nat"},
     {"direct-impossible-symmetric-nat": Confidence.LIKELY}),
    ("symmetric-symmetric-turn-all-dial", False, {"turn-checks-failed", "nat-mapping-unknown"},
     {"nat-mapping-unknown": Confidence.POSSIBLE}),
    ("symmetric-symmetric-turn-all-listen", False, {"turn-checks-failed", "nat-mapping-unknown"}, {}),
    ("symmetric-symmetric-turn-bad-credential-dial", False,
     {"turn-allocation-failed", "direct-impossible-symmetric-nat"}, {}),
    ("symmetric-symmetric-turn-bad-credential-listen", False,
     {"turn-allocation-failed", "direct-impossible-symmetric-nat"}, {}),
    # In this lab both cone NATs kept the port, and the checks still failed (see the report in
    # docs/verdicts/nat-mapping-unknown.md): one STUN server cannot tell the mapping, and says so.
    ("cone-cone-dial", False, {"nat-mapping-unknown"}, {"nat-mapping-unknown": Confidence.POSSIBLE}),
    ("cone-cone-listen", False, {"nat-mapping-unknown"}, {}),
    # `dial` given two STUN servers (coturn's two addresses) also probes its NAT (RFC 5780 tests)
    ("probed-symmetric-symmetric-dial", False,
     {"direct-impossible-symmetric-nat", "nat-mapping-symmetric", "nat-probed"},
     {"direct-impossible-symmetric-nat": Confidence.LIKELY, "nat-mapping-symmetric": Confidence.CERTAIN,
      "nat-probed": Confidence.CERTAIN}),
    ("probed-symmetric-symmetric-listen", False, {"direct-impossible-symmetric-nat"}, {}),
    ("probed-dialer-udp-blocked-dial", False, {"udp-blocked-local"}, {"udp-blocked-local": Confidence.LIKELY}),
    ("probed-dialer-udp-blocked-listen", False, {"udp-blocked-remote"}, {}),
    ("probed-cone-cone-dial", True, set(), {}),
    ("probed-cone-cone-listen", True, set(), {}),
    ("symmetric-fullcone-dial", True, set(), {}),
    ("symmetric-fullcone-listen", True, set(), {}),
    ("symmetric-symmetric-turn-relay-dial", True, set(), {}),
    ("symmetric-symmetric-turn-relay-listen", True, set(), {}),
    # recorded with bounded gathering (`webrtc.gathering_ended`) and the TURN error code kept
    ("bounded-dialer-udp-blocked-dial", False, {"udp-blocked-local"}, {"udp-blocked-local": Confidence.LIKELY}),
    ("bounded-dialer-udp-blocked-listen", False, {"udp-blocked-remote"}, {}),
    ("coded-turn-bad-credential-dial", False, {"turn-allocation-failed", "direct-impossible-symmetric-nat"},
     {"turn-allocation-failed": Confidence.CERTAIN, "direct-impossible-symmetric-nat": Confidence.LIKELY}),
    ("coded-turn-bad-credential-listen", False, {"turn-allocation-failed", "direct-impossible-symmetric-nat"},
     {"turn-allocation-failed": Confidence.CERTAIN}),
    # both peers given two STUN servers: each side's srflx candidates show its own NAT's mapping
    ("two-stun-cone-cone-dial", True, set(), {}),
    ("two-stun-cone-cone-listen", True, set(), {}),
    ("two-stun-symmetric-symmetric-dial", False,
     {"direct-impossible-symmetric-nat", "nat-mapping-symmetric", "nat-probed"},
     {"direct-impossible-symmetric-nat": Confidence.CERTAIN}),
    ("two-stun-symmetric-symmetric-listen", False, {"direct-impossible-symmetric-nat", "nat-mapping-symmetric"},
     {"direct-impossible-symmetric-nat": Confidence.CERTAIN}),
]


def events(name: str) -> tuple:
    return load(TRACES / f"{name}.jsonl").events


def story_of(evs: tuple):
    relayed = next(e.connection_id for e in evs if isinstance(e, CircuitSecured))
    return upgrade_story(evs, relayed)


@pytest.mark.parametrize(("name", "upgraded", "codes", "confidence"), TABLE, ids=[row[0] for row in TABLE])
def test_recorded_lab_run_names_its_network_cause(name, upgraded, codes, confidence):
    story = story_of(events(name))
    assert story.upgraded is upgraded, story.summary
    found = {f.code: f for f in story.findings}
    assert set(found) & NETWORK_CODES == codes
    if not upgraded:
        assert "webrtc-ice-failed" in found  # the step's own finding stays; the network cause comes beside it
    for code in codes:
        f = found[code]
        assert f.evidence and f.advice and f.confidence
        assert (f.settle is not None) is (f.confidence is not Confidence.CERTAIN)
    for code, want in confidence.items():
        assert found[code].confidence is want


def test_every_recorded_trace_is_in_the_table():
    assert {p.stem for p in TRACES.glob("*.jsonl")} == {row[0] for row in TABLE}


def test_udp_blocked_here_says_gathering_waited_and_the_relay_worked():
    (f,) = [f for f in story_of(events("dialer-udp-blocked-dial")).findings if f.code == "udp-blocked-local"]
    assert "dialer" in f.title
    text = " ".join(f.evidence)
    assert "no srflx candidate" in text and "gathering took 3.1 s" in text
    assert "carried pings" in text and "answers others" in text


def test_the_answer_delay_of_a_blocked_remote_is_evidence():
    (f,) = [f for f in story_of(events("listener-udp-blocked-dial")).findings if f.code == "udp-blocked-remote"]
    assert any("after the offer" in e for e in f.evidence) and "listener" in f.title


def test_direct_impossible_says_when_the_relay_cuts_the_fallback():
    (f,) = [f for f in story_of(events("symmetric-symmetric-dial")).findings
            if f.code == "direct-impossible-symmetric-nat"]
    assert "TURN" in f.advice and "after 60 min" in f.advice and "1 GiB" in f.advice
    assert any(e.startswith("TURN: none") for e in f.evidence)


def test_turn_allocation_refused_at_once():
    (f,) = [f for f in story_of(events("symmetric-symmetric-turn-bad-credential-dial")).findings
            if f.code == "turn-allocation-failed"]
    assert any("refused" in e for e in f.evidence)


def test_turn_refusal_carries_its_stun_error_code():
    for side in ("dial", "listen"):
        (f,) = [f for f in story_of(events(f"coded-turn-bad-credential-{side}")).findings
                if f.code == "turn-allocation-failed"]
        assert (f.data["error_code"], f.data["error_reason"], f.data["outcome"]) == (401, "Unauthorized",
                                                                                    "error_response")


def test_gathering_that_hit_its_stun_bound_is_the_evidence():
    evs = events("bounded-dialer-udp-blocked-dial")
    (ended,) = [e for e in evs if e.kind == "webrtc.gathering_ended"]
    assert ended.ended_by is GatheringEnd.SERVER_BOUND and ended.bound_s == 2.0  # the default bound
    (f,) = [f for f in story_of(evs).findings if f.code == "udp-blocked-local"]
    assert f.data == {"stun_bound_s": 2.0, "stun_unanswered": 1}


def test_a_stun_server_that_answers_with_an_error_is_not_blocked_udp():
    evs = events("bounded-dialer-udp-blocked-dial")
    refused = tuple(dataclasses.replace(e, outcome=IceServerOutcome.ERROR_RESPONSE, error_code=400,
                                        error_reason="Bad Request")
                    if isinstance(e, IceServerQueried) else e for e in evs)
    assert "udp-blocked-local" not in {f.code for f in story_of(refused).findings}


def _stun_sends_refused(evs: tuple) -> tuple:
    """Derived from a recorded run: its STUN requests as this host's firewall refusing them would
    have recorded them (what tests/live/test_udp_refused_gathering.py gets from a real one)."""
    return tuple(dataclasses.replace(e, outcome=IceServerOutcome.FAILED, send_refused=True,
                                     error="SendRefusedError: this host refused to send it ([Errno 1] "
                                     "Operation not permitted)")
                 if isinstance(e, IceServerQueried) else e for e in evs)


def test_stun_requests_this_host_refused_while_checks_went_out_stay_likely():
    """A rule against STUN's port only would refuse them too: not proof that all UDP is refused."""
    evs = _stun_sends_refused(events("bounded-dialer-udp-blocked-dial"))
    (f,) = [f for f in story_of(evs).findings if f.code == "udp-blocked-local"]
    assert f.confidence is Confidence.LIKELY and "own firewall" not in f.title
    assert any("refused to send the 1 STUN request(s)" in e for e in f.evidence), f.evidence


def test_stun_requests_this_host_refused_with_no_check_run_are_certain():
    evs = tuple(e for e in _stun_sends_refused(events("bounded-dialer-udp-blocked-dial"))
                if not isinstance(e, CandidatePairFinal) and e.kind != "webrtc.pair_state_changed")
    (f,) = [f for f in story_of(evs).findings if f.code == "udp-blocked-local"]
    assert f.confidence is Confidence.CERTAIN and "own firewall" in f.title
    assert f.data == {"stun_send_refused": 1}
    assert any("refused to send every STUN request" in e and "Operation not permitted" in e for e in f.evidence)


def test_two_stun_servers_show_the_remote_mapping_from_its_candidates():
    def remote(name: str) -> list[RemoteCandidateReceived]:
        return [e for e in events(name) if isinstance(e, RemoteCandidateReceived) and e.accepted]
    assert mapping_from_srflx(remote("two-stun-cone-cone-dial")).verdict == EIM_SEEN
    assert mapping_from_srflx(remote("two-stun-symmetric-symmetric-dial")).verdict == SYMMETRIC
    (f,) = [f for f in story_of(events("two-stun-symmetric-symmetric-dial")).findings
            if f.code == "direct-impossible-symmetric-nat"]
    assert (f.data["local_mapping"], f.data["remote_mapping"]) == (SYMMETRIC, SYMMETRIC)
    assert f.data["relay_cut_after_s"] == 3600 and f.data["relay_data_limit_bytes"] == 1 << 30
    assert f.settle is None


def test_one_stun_server_leaves_direct_impossible_unsettled():
    (f,) = [f for f in story_of(events("coded-turn-bad-credential-dial")).findings
            if f.code == "direct-impossible-symmetric-nat"]
    assert f.data["remote_mapping"] == PORT_CHANGED and f.confidence is Confidence.LIKELY
    assert f.settle  # what would measure it: two STUN servers on that side, or p2pdiag nat there


def test_turn_checks_failed_counts_the_pairs_through_turn():
    (f,) = [f for f in story_of(events("symmetric-symmetric-turn-all-dial")).findings
            if f.code == "turn-checks-failed"]
    assert any("pair(s) through TURN, all failed" in e for e in f.evidence)


# --- the mapping, from candidates -----------------------------------------------------------------


def _srflx(address: str, port: int, base: str | None, base_port: int | None) -> LocalCandidateGathered:
    return LocalCandidateGathered(t_s=1.0, connection_id="webrtc-1", foundation="f", component=1,
                                  candidate_type=CandidateType.SRFLX, protocol="udp", address=address, port=port,
                                  related_address=base, related_port=base_port, priority=1,
                                  added_by_p2pdiag=False)


def test_one_base_two_ports_for_two_stun_servers_is_symmetric():
    m = mapping_from_srflx([_srflx("203.0.113.1", 40000, "198.18.1.10", 5000),
                            _srflx("203.0.113.1", 40007, "198.18.1.10", 5000)])
    assert m.verdict == SYMMETRIC and m.stun_answers == 2 and "40007" in m.evidence[0]


def test_one_stun_server_gives_hints_only():
    assert mapping_from_srflx([_srflx("203.0.113.1", 5000, "198.18.1.10", 5000)]).verdict == PORT_KEPT
    assert mapping_from_srflx([_srflx("203.0.113.1", 6000, "198.18.1.10", 5000)]).verdict == PORT_CHANGED
    assert mapping_from_srflx([_srflx("203.0.113.1", 6000, None, None)]).verdict == UNKNOWN
    assert mapping_from_srflx([]).verdict == UNKNOWN


def test_a_prflx_port_other_than_the_srflx_port_shows_the_remote_is_symmetric():
    """Recorded: symmetric (LAN a) to full cone (LAN b). The listener learned the dialer's real port."""
    evs = events("symmetric-fullcone-listen")
    remote = [e for e in evs if isinstance(e, RemoteCandidateReceived)]
    prflx = [(p.remote_address, p.remote_port) for p in evs
             if isinstance(p, CandidatePairFinal) and p.remote_type is CandidateType.PRFLX]
    m = mapping_from_srflx(remote, prflx)
    assert m.verdict == SYMMETRIC and "peer reflexive" in m.evidence[0]
    local = [e for e in evs if isinstance(e, LocalCandidateGathered)]
    assert mapping_from_srflx(local).verdict == PORT_KEPT  # the full-cone side kept its port


def test_symmetric_seen_on_a_failed_attempt():
    """Derived from the recorded symmetric/full-cone run: the prflx pair fails instead of succeeding,
    as it would if the listener's NAT filtered too. The dialer's NAT is then known symmetric."""
    out = []
    for e in events("symmetric-fullcone-listen"):
        if isinstance(e, (CandidatePairSelected, WebRTCUpgradeSucceeded)):
            continue
        if isinstance(e, CandidatePairFinal):
            e = dataclasses.replace(e, state=CandidatePairState.FAILED, nominated=False)
        out.append(e)
    started = next(e for e in out if isinstance(e, WebRTCUpgradeStarted))
    out.append(WebRTCUpgradeFailed(t_s=out[-1].t_s + 1, connection_id=started.connection_id,
                                   relayed_connection_id=started.relayed_connection_id, role=started.role,
                                   step=UpgradeStep.ICE, error_kind=ErrorKind.UNREACHABLE,
                                   reason="every candidate pair failed", duration_s=4.0))
    found = {f.code: f for f in story_of(tuple(out)).findings}
    assert found["nat-mapping-symmetric"].confidence is Confidence.CERTAIN
    assert "dialer" in found["nat-mapping-symmetric"].title
    # this side kept its port, so "both symmetric" is not claimed
    assert "direct-impossible-symmetric-nat" not in found


def test_private_addresses():
    assert all(is_private(a) for a in ("10.0.0.1", "192.168.1.2", "100.64.0.1", "198.18.1.10", "127.0.0.1",
                                       "fe80::1", "fd00::1", "abc.local"))
    assert not any(is_private(a) for a in ("203.0.113.1", "8.8.8.8", "2001:4860::1"))


def test_network_diagnosis_imports_nothing_heavy():
    code = ("import sys, p2pdiag.diagnosis.network\n"
            "print(' '.join(m for m in ('trio', 'aiortc', 'aioice', 'libp2p', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_the_nat_probe_in_a_dial_trace_is_judged():
    evs = events("probed-symmetric-symmetric-dial")
    found = {f.code: f for f in story_of(evs).findings}
    assert found["nat-probed"].title.endswith(
        "address-and-port-dependent mapping, address-and-port-dependent filtering")
    assert "symmetric (seen)" in found["direct-impossible-symmetric-nat"].evidence[0]
    cone = {f.code: f for f in story_of(events("probed-dialer-udp-blocked-dial")).findings}
    assert "the NAT probe's STUN tests got no answer either" in cone["udp-blocked-local"].evidence


def test_an_endpoint_independent_probe_replaces_the_guess():
    """Derived: the recorded cone/cone run that failed (no probe), with the probe's tests of the recorded
    cone/cone run that had one. The mapping is then known, so nothing says it cannot be told."""
    from p2pdiag.trace.events import NatTestCompleted

    probe = tuple(e for e in events("probed-cone-cone-dial") if isinstance(e, NatTestCompleted))
    found = {f.code: f for f in story_of(events("cone-cone-dial") + probe).findings}
    assert "nat-mapping-unknown" not in found and "direct-impossible-symmetric-nat" not in found
    assert found["nat-probed"].title.startswith("The dialer's NAT, probed: endpoint-independent mapping")


def test_the_fallback_cut_is_read_as_relay_limited_reads_it():
    """Derived: the recorded symmetric/symmetric dial, with the Limit a js relay writes (2 min in ms)."""
    from p2pdiag.trace.events import HopStatusReceived

    evs = tuple(dataclasses.replace(e, announced_duration_s=120000, announced_data_bytes=131072)
                if isinstance(e, HopStatusReceived) else e for e in events("symmetric-symmetric-dial"))
    (f,) = [f for f in story_of(evs).findings if f.code == "direct-impossible-symmetric-nat"]
    assert "after 2 min" in f.advice and "most likely milliseconds" in f.advice and "128 KiB" in f.advice


def test_the_listener_reads_the_limit_from_stop_connect():
    (f,) = [f for f in story_of(events("symmetric-symmetric-listen")).findings
            if f.code == "direct-impossible-symmetric-nat"]
    assert "after 60 min" in f.advice
