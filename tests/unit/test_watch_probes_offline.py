"""The pure parts of watch's probes: transports of addresses, and a `dial --json` verdict read as an
upgrade Observation (verdicts made by diagnosis from recorded traces of real runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from p2pdiag.diagnosis import diagnose
from p2pdiag.render.json import error_document, verdict_document
from p2pdiag.targets import parse_relay
from p2pdiag.trace.file import load
from p2pdiag.watch.model import UpgradeTarget
from p2pdiag.watch.probes import (
    P2PDIAG_ERROR,
    ProbeContext,
    _Probe,
    transport_of,
    upgrade_observation,
    with_peer_id,
)

TRACES = Path(__file__).resolve().parents[1] / "traces" / "webrtc"
PEER = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
RELAY = "12D3KooWJaY1dRwhaS3e7DzNXZnt2iz7sABcvHDgDLVGxVMJThp8"


@pytest.mark.parametrize("addr, transport", [
    ("/ip4/1.2.3.4/tcp/4001", "tcp"),
    ("/ip4/1.2.3.4/tcp/4001/p2p/" + PEER, "tcp"),
    ("/ip6/::1/tcp/4002/ws/p2p/" + PEER, "ws"),
    ("/dns4/ws/tcp/443", "tcp"),  # a host named "ws" is a value, not the protocol
    ("/dns4/example.com/tcp/443/tls/ws", "wss"),
    ("/ip4/1.2.3.4/udp/4001/quic-v1", "quic-v1"),
    ("/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/uEiA", "webtransport"),
    ("/ip4/1.2.3.4/udp/4001/webrtc-direct/certhash/uEiA", "webrtc-direct"),
    (f"/ip4/1.2.3.4/tcp/4001/p2p/{RELAY}/p2p-circuit", "p2p-circuit"),
    (f"/ip4/1.2.3.4/tcp/4001/p2p/{RELAY}/p2p-circuit/webrtc/p2p/{PEER}", "p2p-circuit"),
    ("/webrtc", "webrtc"),
    ("/ip4/1.2.3.4/udp/53", "udp"),
    ("", "other"),
])
def test_transport_of(addr, transport):
    assert transport_of(addr) == transport


def test_with_peer_id():
    assert with_peer_id("/ip4/1.2.3.4/tcp/1", PEER) == f"/ip4/1.2.3.4/tcp/1/p2p/{PEER}"
    assert with_peer_id(f"/ip4/1.2.3.4/tcp/1/p2p/{PEER}", PEER) == f"/ip4/1.2.3.4/tcp/1/p2p/{PEER}"
    assert with_peer_id(f"/ip4/1.2.3.4/tcp/1/p2p/{RELAY}", PEER) is None  # another peer's address
    circuit = f"/ip4/1.2.3.4/tcp/1/p2p/{RELAY}/p2p-circuit"
    assert with_peer_id(circuit, PEER) == f"{circuit}/p2p/{PEER}"


def observe(exit_code: int, document: dict | bytes):
    out = document if isinstance(document, bytes) else json.dumps(document).encode()
    target = UpgradeTarget(name="u", interval_s=300, timeout_s=30, peer_id=PEER,
                           relays=(parse_relay(f"/ip4/127.0.0.1/tcp/1/p2p/{RELAY}"),))

    async def main():
        return upgrade_observation(_Probe(ProbeContext(host=None), target), exit_code, out)

    return trio.run(main)


def test_an_upgraded_dial_is_ok_with_its_phases():
    doc = verdict_document(diagnose(load(TRACES / "initiator-js-ok.jsonl")))
    obs = observe(doc["exit_code"], doc)
    assert obs.ok and obs.error_kind is None and obs.upgrade.outcome == "upgraded" and obs.upgrade.exit_code == 0
    assert obs.upgrade.causes == ("relay-limit-unit", "relay-limited") and obs.upgrade.certainty
    phases = {p.name: p.seconds for p in obs.phases}
    steps = {s["key"]: s for s in doc["steps"]}
    assert phases["relay-dial"] == steps["relay.connect"]["duration_s"]
    assert phases["signaling"] == steps["webrtc-1.signaling"]["duration_s"]
    assert phases["dtls"] == steps["webrtc-1.dtls"]["duration_s"]
    # no duration of their own: the time since the step before them
    assert phases["ice"] == pytest.approx(steps["webrtc-1.ice"]["t_s"] - steps["webrtc-1.remote-candidates"]["t_s"])
    assert phases["first-channel"] == pytest.approx(steps["webrtc-1.channel"]["t_s"] - steps["webrtc-1.dtls"]["t_s"])
    assert all(s > 0 for s in phases.values()), phases


def test_a_failed_upgrade_names_its_cause_and_phase():
    doc = verdict_document(diagnose(load(TRACES / "initiator-udp-blocked.jsonl")))
    obs = observe(doc["exit_code"], doc)
    assert not obs.ok and obs.upgrade.outcome == "relayed_only" and obs.upgrade.exit_code == 3
    assert obs.failed_phase == "ice" and obs.error_kind == "webrtc-ice-failed" == obs.upgrade.causes[0]
    assert "ice" not in {p.name for p in obs.phases} and "signaling" in {p.name for p in obs.phases}


def test_an_interrupted_dial_ran_out_of_the_probes_time():
    doc = verdict_document(diagnose(load(TRACES.parent / "relay" / "dial-interrupted.jsonl")))
    obs = observe(doc["exit_code"], doc)
    assert not obs.ok and obs.timed_out and obs.error_kind == "timeout" and obs.upgrade.exit_code == 130
    assert obs.upgrade.outcome == "interrupted" and "run-interrupted" in obs.upgrade.causes
    assert obs.failed_phase == "upgrade" and {p.name for p in obs.phases} >= {"relay-dial", "hop", "identify"}


@pytest.mark.parametrize("code, out", [
    (2, json.dumps(error_document("dial", 2, "p2pdiag: error: bad peer id")).encode()),
    (1, json.dumps(error_document("dial", 1, "internal error")).encode()),
    (1, b"Traceback (most recent call last):"),
    (0, b""),
    (0, b"[1, 2]"),
])
def test_p2pdiag_errors_are_not_the_peers(code, out):
    obs = observe(code, out)
    assert not obs.ok and obs.error_kind == P2PDIAG_ERROR and "not the peer's" in obs.error


def test_a_bug_in_p2pdiag_raises_instead_of_becoming_an_observation():
    # no host at all (host=None): the dial fails with AttributeError, a programming error, which
    # net.classify raises again instead of reporting it as the relay's or the peer's fault
    from p2pdiag.watch.model import PeerTarget, RelayTarget
    from p2pdiag.watch.probes import probe_peer, probe_relay

    ctx = ProbeContext(host=None)
    relay = RelayTarget(name="r", interval_s=30, timeout_s=5, relay=parse_relay(f"/ip4/127.0.0.1/tcp/1/p2p/{RELAY}"))
    peer = PeerTarget(name="p", interval_s=30, timeout_s=5, peer_id=PEER, addrs=("/ip4/127.0.0.1/tcp/1",))
    with pytest.raises(AttributeError):
        trio.run(probe_relay, ctx, relay)
    with pytest.raises(BaseExceptionGroup) as group:  # the peer's dials run in a nursery
        trio.run(probe_peer, ctx, peer)
    assert group.group_contains(AttributeError)
