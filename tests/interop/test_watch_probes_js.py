"""watch's live probes and reservation holder against js-libp2p 3.x: the js relay (interop/js/relay.mjs)
and a js Node listener (interop/js/listener.mjs) listening directly over TCP and WebSocket and
through the relay."""

from __future__ import annotations

import json
import signal
import time

import pytest
from support import JS_DIR, Peer
from support.watch import hold_through_restart, phase_map, relay_target, run

from p2pdiag.targets import parse_relay
from p2pdiag.watch.model import PeerTarget, UpgradeTarget
from p2pdiag.watch.probes import probe_peer, probe_relay, probe_upgrade, transport_of

pytestmark = pytest.mark.interop


def start_js(spawn, node22, script: str, *flags: str) -> Peer:
    proc = spawn([node22, str(JS_DIR / script), *flags], script)
    ready = json.loads(proc.wait_line(lambda s: s.strip().startswith("{") and '"ready"' in s))
    return Peer(ready["peer_id"], ready["addrs"], proc, ready)


def start_listener(spawn, node22, relay: Peer) -> Peer:
    return start_js(spawn, node22, "listener.mjs", "--relay", relay.addr("tcp"), "--tcp-port", "0", "--ws-port", "0")


def direct(peer: Peer) -> tuple[str, ...]:
    return tuple(a for a in peer.addrs if "p2p-circuit" not in a and "/webrtc" not in a)


def test_js_relay_and_listener_probed_directly_through_the_relay_and_upgraded(spawn, node22):
    relay = start_js(spawn, node22, "relay.mjs")
    listener = start_listener(spawn, node22, relay)

    obs = run(probe_relay, relay_target(relay.addr("ws")))
    assert obs.ok and obs.relay.agent and "js-libp2p" in obs.relay.agent, obs
    assert obs.relay.hop_offered and obs.relay.reservation_status == "OK"
    # the js relay writes its two-minute limit as 120000: read in seconds, as diagnosis reads it
    assert obs.relay.limit_duration_s == 120 and obs.relay.limit_data_bytes
    assert obs.relay.reservation_expiry_unix_s > time.time() + 600
    assert list(phase_map(obs)) == ["relay-dial", "relay-identify", "reserve"]
    assert all(p.seconds > 0 for p in obs.phases)

    target = PeerTarget(name="js", interval_s=30, timeout_s=8, peer_id=listener.peer_id, addrs=direct(listener),
                        relays=(parse_relay(relay.addr("tcp")),))
    obs = run(probe_peer, target)
    assert obs.ok, obs
    dials = {d.transport: d for d in obs.peer.dials}
    assert set(dials) == {"tcp", "ws", "p2p-circuit"}, obs.peer.dials
    for d in dials.values():
        assert d.ok and d.reached and d.secured and d.phases and all(p.seconds > 0 for p in d.phases), d
    assert dials["p2p-circuit"].relay == relay.addr("tcp")
    # identify once a probe, on the first path secured: the others end at "secure"
    assert [p.name for p in dials["p2p-circuit"].phases][:3] == ["relay-dial", "hop", "secure"]
    assert [p.name for p in dials["ws"].phases][:2] == ["dial", "secure"]
    assert [[p.name for p in d.phases][-1] for d in dials.values()].count("identify") == 1, obs.peer.dials
    assert "js-libp2p" in obs.peer.agent and "/webrtc-signaling/0.0.1" in obs.peer.protocols
    per_transport = {transport_of(a) for a in obs.peer.listen_addrs}
    assert {"tcp", "ws", "p2p-circuit"} <= per_transport, obs.peer.listen_addrs

    upgrade = run(probe_upgrade, UpgradeTarget(name="u", interval_s=300, timeout_s=30, peer_id=listener.peer_id,
                                               relays=(parse_relay(relay.addr("tcp")),)))
    assert upgrade.ok and upgrade.upgrade.outcome == "upgraded" and upgrade.upgrade.exit_code == 0, upgrade
    phases = phase_map(upgrade)
    assert {"relay-dial", "hop", "secure", "identify", "signaling", "ice", "dtls", "first-channel"} <= set(phases)
    assert phases["signaling"] > 0 and phases["dtls"] > 0


def test_a_listener_killed_fails_its_direct_dials_and_its_circuit(spawn, node22):
    relay = start_js(spawn, node22, "relay.mjs")
    listener = start_listener(spawn, node22, relay)
    target = PeerTarget(name="js", interval_s=30, timeout_s=8, peer_id=listener.peer_id, addrs=direct(listener),
                        relays=(parse_relay(relay.addr("tcp")),), learn_addrs=False)
    assert run(probe_peer, target).ok
    listener.proc.signal(signal.SIGKILL)
    listener.proc.wait(5)
    time.sleep(0.5)  # the relay reads the killed listener's connection end
    obs = run(probe_peer, target)
    assert not obs.ok and not obs.peer.identified and obs.peer.listen_addrs == (), obs
    dials = {d.transport: d for d in obs.peer.dials}
    for t in ("tcp", "ws"):
        assert not dials[t].reached and dials[t].failed_phase == "dial" and dials[t].error_kind == "refused"
    circuit = dials["p2p-circuit"]
    assert not circuit.ok and not circuit.secured and circuit.failed_phase == "hop", circuit
    assert circuit.error_kind in {"NO_RESERVATION", "CONNECTION_FAILED"}, circuit
    assert obs.failed_phase == "dial" and obs.error_kind == "refused"  # the first address the config names


def test_holder_on_a_js_relay_restarted_with_its_key(spawn, node22, tmp_path):
    key = tmp_path / "relay.key"
    relay = start_js(spawn, node22, "relay.mjs", "--key", str(key))
    port = relay.addr("tcp").split("/tcp/")[1].split("/")[0]
    held = hold_through_restart(relay_target(relay.addr("tcp"), interval_s=1.0, timeout_s=3), lambda s: s[-1].up,
                               relay.proc.stop,
                               lambda: start_js(spawn, node22, "relay.mjs", "--key", str(key), "--tcp-port", port))
    assert held.again.peer_id == relay.peer_id
    states = held.states
    made, lost, back = states[0], next(s for s in states if not s.up), states[-1]
    assert made.up and made.limit_duration_s == 120 and made.expiry_unix_s > made.at_unix_s + 600
    assert lost.error_kind == "closed" and lost.at_unix_s > made.at_unix_s and held.loss_seen_s < 2.0
    assert back.up and back.refreshes == 0 and back.at_unix_s > lost.at_unix_s and back.expiry_unix_s
    assert held.connections_left == []
