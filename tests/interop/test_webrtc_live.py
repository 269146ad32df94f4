"""The WebRTC upgrade against real peers: js-libp2p 3.x in Node, p2pdiag itself, misbehaving peers.

Each test runs tests/support/scenario.py (relay, remote and p2pdiag) and checks the trace and the
diagnosis of that run. No retries: js<->js WebRTC is flaky at times (interop/js/README.md), and a
p2pdiag flake must show here, not be hidden.
"""

from __future__ import annotations

import pytest

from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairState,
    CandidatePairStateChanged,
    DataChannelOpened,
    IceChecksRefused,
    Path,
    PingCompleted,
    PingServed,
    UdpSendFailed,
    WebRTCUpgradeFailed,
)

pytestmark = pytest.mark.interop


def codes(story) -> set[str]:
    return {f.code for f in story.findings}


def test_p2pdiag_upgrades_to_a_js_listener_and_pings_over_webrtc(scenario):
    run = scenario("initiator", "--relay", "js", "--remote", "js")
    (row,) = run.rows
    assert row["ok"] and row["webrtc_ping"] and row["relayed_alive_after"], row
    assert row["first_stream_ms"] < 2000, row
    story = run.story()
    assert story.upgraded and not story.findings, story.findings
    kinds = run.kinds()
    for kind in ("webrtc.signaling_opened", "webrtc.description_signaled", "webrtc.candidate_gathered",
                 "webrtc.candidate_received", "webrtc.pair_state_changed", "webrtc.pair_selected",
                 "webrtc.dtls_state_changed", "webrtc.channel_opened", "webrtc.upgrade_succeeded"):
        assert kind in kinds, kind
    pings = [e for e in run.trace.events if isinstance(e, PingCompleted)]
    assert {(p.path, p.connection_id) for p in pings} >= {(Path.WEBRTC, "webrtc-1"), (Path.RELAYED, "relayed-1")}
    # js identifies every new connection: the inbound identify channel was served
    assert any(isinstance(e, DataChannelOpened) and e.inbound for e in run.trace.events)
    steps = {s.key: s for s in story.steps}
    assert steps["webrtc-1.ice"].status.value == "ok" and "selected" in steps["webrtc-1.ice"].detail


def test_js_dialer_upgrades_to_a_p2pdiag_responder_and_its_ping_works(scenario):
    run = scenario("js-dialer", "--relay", "js", "--attempts", "2")
    assert [r["ok"] and r["webrtc"] for r in run.rows] == [True, True], run.rows
    assert all(len(r["rtts_ms"]) == 2 for r in run.rows)
    events = run.remote_trace.events
    served = [e for e in events if isinstance(e, PingServed) and e.connection_id.startswith("webrtc-")]
    assert served, "the js dialer's pings over WebRTC were answered by p2pdiag"
    for n in (1, 2):
        story = run.story(f"inbound-{n}", remote=True)
        assert story.upgraded, story.summary


def test_p2pdiag_to_p2pdiag_through_a_py_relay(scenario):
    run = scenario("initiator", "--relay", "py", "--remote", "p2pdiag")
    (row,) = run.rows
    assert row["ok"] and row["webrtc_ping"] and row["relayed_alive_after"], row
    assert run.story().upgraded
    responder = run.story("inbound-1", remote=True)
    assert responder.upgraded and responder.role.value == "responder"


def test_remote_without_signaling_is_named_and_the_relay_still_works(scenario):
    run = scenario("initiator", "--relay", "js", "--remote", "js-no-webrtc")
    (row,) = run.rows
    assert not row["ok"] and row["failed_step"] == "signaling" and row["failed_kind"] == "protocol_unsupported"
    assert row["relayed_alive_after"]
    assert codes(run.story()) == {"webrtc-signaling-unsupported"}


def test_remote_resetting_signaling_midway(scenario):
    run = scenario("initiator", "--relay", "py", "--remote", "p2pdiag:reset-after-offer")
    (row,) = run.rows
    # py-libp2p 0.8.1's yamux forgets a stream when its RST arrives, so the waiting read often ends
    # as "Stream closed" (end of stream) rather than as a reset: both are this finding
    assert not row["ok"] and row["failed_step"] == "answer" and row["failed_kind"] in ("reset", "closed"), row
    assert row["relayed_alive_after"]
    story = run.story()
    assert codes(story) == {"webrtc-signaling-reset"}
    assert "listener" in story.findings[0].title


def test_garbage_instead_of_an_answer_is_malformed(scenario):
    run = scenario("initiator", "--relay", "py", "--remote", "p2pdiag:garbage-answer")
    (row,) = run.rows
    assert row["failed_step"] == "answer" and row["failed_kind"] == "malformed", row
    story = run.story()
    assert codes(story) == {"webrtc-signaling-malformed"}
    assert "SDP_ANSWER" in story.findings[0].title


def test_a_fingerprint_that_does_not_match_fails_dtls(scenario):
    run = scenario("initiator", "--relay", "py", "--remote", "p2pdiag:wrong-fingerprint")
    (row,) = run.rows
    assert row["failed_step"] == "dtls" and row["failed_kind"] == "security_failed", row
    assert "fingerprint" in row["reason"]
    assert codes(run.story()) == {"webrtc-dtls-failed"}


def test_relay_policy_without_turn_has_no_local_candidates(scenario):
    run = scenario("initiator", "--relay", "js", "--remote", "js", "--policy", "relay")
    (row,) = run.rows
    assert row["failed_step"] == "gathering" and row["relayed_alive_after"], row
    assert codes(run.story()) == {"webrtc-no-local-candidates"}


def test_loopback_only_network_upgrades(scenario, netns):
    """aioice leaves 127.0.0.1 out of host candidates; p2pdiag adds it, so this works."""
    run = scenario("initiator", "--relay", "js", "--remote", "js", netns="loopback")
    (row,) = run.rows
    assert row["ok"] and row["webrtc_ping"], row
    pair = run.story().facts["webrtc_pair"]
    assert pair.startswith("127.0.0.1:") and "→ 127.0.0.1:" in pair


def test_udp_blocked_gives_the_ice_verdict_within_the_budget(scenario, netns):
    """UDP dropped where the sender cannot see it (on input): every check leaves, nothing answers."""
    run = scenario("initiator", "--relay", "js", "--remote", "js", netns="udp-dropped-in")
    (row,) = run.rows
    assert row["failed_step"] == "ice" and row["relayed_alive_after"], row
    failed = next(e for e in run.trace.events if isinstance(e, WebRTCUpgradeFailed))
    checking = next(e for e in run.trace.events if e.kind == "webrtc.ice_state_changed")
    assert 4.0 <= failed.t_s - checking.t_s < 4.5  # the 4 s ICE budget, not aioice's 63.5 s
    # 0.1 s doubling, 4 retransmits: a blocked check gives up after 3.1 s, inside the budget
    finals = [e for e in run.trace.events if isinstance(e, CandidatePairFinal)]
    assert finals and all(p.state is CandidatePairState.FAILED for p in finals), finals
    story = run.story()
    assert codes(story) == {"webrtc-ice-failed"}
    assert any("127.0.0.1" in line and "failed" in line for line in story.findings[0].evidence)
    assert any(isinstance(e, CandidatePairStateChanged) for e in run.trace.events)
    # the sends went out: nothing here says this host blocked them, and no verdict says so
    assert not any(isinstance(e, (UdpSendFailed, IceChecksRefused)) for e in run.trace.events)


def assert_refused_here(story, events, finding_role: str) -> None:
    """ICE ended on this host's refusal of every check's send, and the verdict names it, certain."""
    (refused,) = [e for e in events if isinstance(e, IceChecksRefused)]
    assert refused.errno_name == "EPERM" and refused.refused_pairs >= 1, refused
    assert refused.refused_pairs + refused.unroutable_pairs == refused.pairs, refused
    assert refused.sends_refused >= 2 * refused.refused_pairs, refused  # each check and its retransmit
    sends = [e for e in events if isinstance(e, UdpSendFailed)]
    assert sends and all(e.refused and e.errno_name == "EPERM" for e in sends), sends
    failed = next(e for e in events if isinstance(e, WebRTCUpgradeFailed))
    assert failed.step.value == "ice" and failed.error_kind.value == "unreachable" and "EPERM" in failed.reason
    assert failed.t_s >= refused.t_s
    finals = [e for e in events if isinstance(e, CandidatePairFinal)]
    assert finals and not any(p.state is CandidatePairState.SUCCEEDED for p in finals)
    local = next(f for f in story.findings if f.code == "udp-blocked-local")
    assert local.confidence.value == "certain" and finding_role in local.title
    assert any("EPERM" in line and "refused every UDP send" in line for line in local.evidence), local.evidence
    assert local.data["sends_refused"] == refused.sends_refused


@pytest.mark.parametrize("netns_name", ["udp-blocked", "udp-rejected"])
def test_udp_refused_by_this_hosts_firewall_ends_ice_on_that_evidence(scenario, netns, netns_name):
    """A drop or reject rule on output: the kernel refuses every send, so ICE ends there, named."""
    run = scenario("initiator", "--relay", "js", "--remote", "js", netns=netns_name)
    (row,) = run.rows
    assert row["failed_step"] == "ice" and row["relayed_alive_after"], row
    story = run.story()
    assert codes(story) == {"webrtc-ice-failed", "udp-blocked-local"}, story.findings
    assert_refused_here(story, run.trace.events, "the dialer's")


def test_a_responder_behind_a_firewall_that_refuses_udp_names_it(scenario, netns):
    """The js dialer's upgrade to a p2pdiag responder on a host whose firewall refuses UDP."""
    run = scenario("js-dialer", "--relay", "js", "--wait-for", "webrtc.upgrade_failed", netns="udp-blocked")
    assert not run.rows[0]["ok"]
    story = run.story("inbound-1", remote=True)
    assert not story.upgraded and "udp-blocked-local" in codes(story), story.findings
    assert_refused_here(story, run.remote_trace.events, "the listener's")


def test_responder_sees_the_js_dialer_abandon_the_upgrade(scenario, netns):
    """UDP blocked; the js dialer gives up at its 6 s address timeout, before p2pdiag's 8 s budget."""
    run = scenario("js-dialer", "--relay", "js", "--responder-ice-timeout", "8", "--wait-for",
                   "webrtc.upgrade_failed", netns="udp-dropped-in")
    assert not run.rows[0]["ok"]
    story = run.story("inbound-1", remote=True)
    assert not story.upgraded
    assert {"webrtc-upgrade-abandoned", "webrtc-ice-failed"} <= codes(story), story.findings
