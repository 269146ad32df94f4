"""watch's live probes and reservation holder against real py-libp2p peers on loopback.

The relay is py-libp2p's own CircuitV2Protocol (`p2pdiag.peers.pyrelay`), the listener is
`p2pdiag listen`; the hostile ones are `p2pdiag.peers.badrelay` and `p2pdiag.peers.hostile`.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
import trio
from support import Peer, Proc
from support.watch import FAST, hold_through_restart, phase_map, relay_target, run

from p2pdiag.probes import net
from p2pdiag.probes.relaycheck import CIRCUIT_SETTLE_S
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import parse_relay
from p2pdiag.watch.model import Module, PeerTarget, UpgradeTarget
from p2pdiag.watch.probes import P2PDIAG_ERROR, probe_context, probe_peer, probe_relay, probe_upgrade, transport_of


def fake_peer_id() -> str:
    return net.peer_id_from_bytes(b"\x00\x24\x08\x01\x12\x20" + os.urandom(32))


PYRELAY = [sys.executable, "-m", "p2pdiag.peers.pyrelay"]


def ready_peer(proc: Proc) -> Peer:
    ready = json.loads(proc.wait_line(lambda s: '"ready"' in s))
    return Peer(ready["peer_id"], ready["addrs"], proc)


@pytest.fixture(scope="module")
def peers():
    """One py relay (120 s / 64 KiB limits, 600 s TTL, TCP and WebSocket) and one `p2pdiag listen` on it,
    shared by the tests that only read from them (starting py-libp2p costs seconds)."""
    procs: list[Proc] = []
    try:
        procs.append(Proc([*PYRELAY, "--duration-s", "120", "--data-bytes", "65536", "--reservation-ttl-s", "600",
                           "--max-reservations", "16", "--ws-port", "0"], "py relay"))
        relay = ready_peer(procs[0])
        procs.append(Proc([sys.executable, "-m", "p2pdiag", "listen", "--relay", relay.addr("tcp")], "p2pdiag listen"))
        head = procs[1].wait_line(lambda s: s.startswith("Listening as "))
        yield relay, Peer(head.split()[2].rstrip("."), [], procs[1])
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_relay_probe_reads_identify_reservation_and_limits(peers):
    relay, _ = peers
    before = time.time()
    obs = run(probe_relay, relay_target(relay.addr("tcp")))
    assert obs.ok, obs
    assert obs.module is Module.RELAY and obs.target == "r1" and not obs.timed_out
    phases = phase_map(obs)
    assert list(phases) == ["relay-dial", "relay-identify", "reserve"]
    assert all(s > 0 for s in phases.values()), phases
    assert obs.duration_s >= sum(phases.values())
    facts = obs.relay
    assert facts.agent.startswith("py-libp2p/")
    assert facts.hop_offered is True and "/libp2p/circuit/relay/0.2.0/hop" in facts.protocols
    assert facts.reservation_status == "OK"
    assert before + 590 <= facts.reservation_expiry_unix_s <= time.time() + 601
    assert facts.limit_duration_s == 120 and facts.limit_data_bytes == 65536
    assert any(a.endswith(relay.addr("tcp").split("/tcp/")[1].split("/")[0]) for a in facts.listen_addrs)
    # and over WebSocket, with its own connection
    ws = run(probe_relay, relay_target(relay.addr("ws")))
    assert ws.ok and ws.relay.reservation_status == "OK", ws


def test_relay_probe_failures_are_observations(spawn):
    full, plain = (spawn([*PYRELAY, *flags], "py relay") for flags in (["--max-reservations", "0"], ["--no-hop"]))
    full, plain = ready_peer(full), ready_peer(plain)
    obs = run(probe_relay, relay_target(full.addr("tcp")))
    assert not obs.ok and obs.failed_phase == "reserve" and obs.error_kind == "RESOURCE_LIMIT_EXCEEDED", obs
    assert obs.relay.hop_offered is True and obs.relay.reservation_status == "RESOURCE_LIMIT_EXCEEDED"
    assert [p.name for p in obs.phases] == ["relay-dial", "relay-identify"]

    obs = run(probe_relay, relay_target(plain.addr("tcp")))
    assert not obs.ok and obs.failed_phase == "relay-identify", obs
    assert obs.error_kind == "protocol_unsupported" and obs.relay.hop_offered is False
    assert obs.relay.reservation_status == "NO_ANSWER"  # RESERVE was tried: the hop protocol is not there

    gone = plain.addr("tcp").replace(plain.addr("tcp").split("/tcp/")[1].split("/")[0], "1", 1)
    obs = run(probe_relay, relay_target(gone))
    assert not obs.ok and obs.failed_phase == "relay-dial" and obs.error_kind == "refused", obs
    assert "refused" in obs.error.lower() and "\n" not in obs.error and obs.phases == ()


def test_peer_probe_direct_per_transport_relayed_and_learned(peers):
    relay, listener = peers
    # the relay is a peer too: its TCP and WebSocket addresses dialed directly, a QUIC one listed untried
    quic = f"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/{relay.peer_id}"
    obs = run(probe_peer, PeerTarget(name="relay-as-peer", interval_s=30, timeout_s=8, peer_id=relay.peer_id,
                                     addrs=(relay.addr("tcp"), relay.addr("ws"), quic)))
    assert obs.ok and obs.module is Module.PEER, obs
    by_transport = {d.transport: d for d in obs.peer.dials}
    assert set(by_transport) == {"tcp", "ws", "quic-v1"}
    for t in ("tcp", "ws"):
        d = by_transport[t]
        assert d.ok and d.reached and d.secured and d.tried and d.relay is None, d
        assert [p.name for p in d.phases][:2] == ["dial", "secure"] and all(p.seconds > 0 for p in d.phases)
    # identify once a probe, on one path: the observation's phases are that path's
    (identified,) = [d for d in obs.peer.dials if [p.name for p in d.phases] == ["dial", "secure", "identify"]]
    assert obs.phases == identified.phases
    assert not by_transport["quic-v1"].tried and not by_transport["quic-v1"].reached
    assert obs.peer.identified and obs.peer.agent.startswith("py-libp2p/")
    assert {transport_of(a) for a in obs.peer.listen_addrs} == {"tcp", "ws"}

    # the listener through the relay: HOP, Noise, yamux and identify over the circuit
    obs = run(probe_peer, PeerTarget(name="listener", interval_s=30, timeout_s=8, peer_id=listener.peer_id,
                                     relays=(parse_relay(relay.addr("tcp")),)))
    assert obs.ok, obs
    circuit, *learned = obs.peer.dials
    assert circuit.transport == "p2p-circuit" and circuit.relay == relay.addr("tcp"), circuit
    assert circuit.ok and circuit.reached and circuit.secured
    assert [p.name for p in obs.phases] == ["relay-dial", "hop", "secure", "identify"] == [
        p.name for p in circuit.phases]
    assert all(p.seconds > 0 for p in obs.phases)
    # py-libp2p 0.8.1's identify cuts every address it announces at its first /p2p/, so `p2pdiag listen`
    # announces its relayed addresses as the relay's plain one: learned, dialed, and it is not the peer
    relay_plain = relay.addr("tcp").split("/p2p/")[0]
    assert set(obs.peer.listen_addrs) == {relay_plain}
    (wrong,) = learned
    assert wrong.addr == f"{relay_plain}/p2p/{listener.peer_id}" and wrong.transport == "tcp"
    assert wrong.reached and not wrong.secured and not wrong.ok, wrong
    assert wrong.failed_phase == "secure" and wrong.error_kind == "peer_id_mismatch"

    # learn_addrs off: only what the config names. py-libp2p 0.8.1 relays tear a circuit down up to
    # ~0.6 s after it ended, resetting the circuit to the same listener open by then (relaycheck.py)
    time.sleep(CIRCUIT_SETTLE_S)
    obs = run(probe_peer, PeerTarget(name="listener", interval_s=30, timeout_s=8, peer_id=listener.peer_id,
                                     relays=(parse_relay(relay.addr("tcp")),), learn_addrs=False))
    assert obs.ok and [d.transport for d in obs.peer.dials] == ["p2p-circuit"], (obs.error_kind, obs.error)


def test_a_peer_id_without_reservation_is_no_reservation(peers):
    relay, _ = peers
    nobody = fake_peer_id()
    obs = run(probe_peer, PeerTarget(name="gone", interval_s=30, timeout_s=8, peer_id=nobody,
                                     relays=(parse_relay(relay.addr("tcp")),)))
    assert not obs.ok and obs.failed_phase == "hop" and obs.error_kind == "NO_RESERVATION", obs
    (d,) = obs.peer.dials
    assert not d.reached and d.error_kind == "NO_RESERVATION" and [p.name for p in d.phases] == ["relay-dial"]
    assert not obs.peer.identified and obs.peer.listen_addrs == ()


async def _proxy(target_port: int, task_status=trio.TASK_STATUS_IGNORED):
    """A TCP forwarder to 127.0.0.1:TARGET_PORT (stands for a node's listening socket): `close()` stops
    it listening while the connections it accepted go on."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def pipe(a, b):
        try:
            while data := await a.receive_some(65536):
                await b.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await b.aclose()

    async def handle(client):
        upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
        async with trio.open_nursery() as n:
            n.start_soon(pipe, client, upstream)
            n.start_soon(pipe, upstream, client)

    async with trio.open_nursery() as nursery:
        task_status.started((listeners[0].socket.getsockname()[1], listeners[0]))
        try:
            while True:
                nursery.start_soon(handle, await listeners[0].accept())
        except trio.ClosedResourceError:
            pass  # stopped listening: the accepted connections go on


def test_relayed_paths_share_one_relay_connection_and_dial_anew_when_it_broke(peers):
    """The first relayed path dials the relay and keeps that connection; the next probe's HOP
    rides on it (no relay-dial phase). When it broke (here closed under it, as a relay restart or an
    idle close would), the next probe's HOP fails on it, and the path dials the relay again and is ok."""
    relay, listener = peers
    target = PeerTarget(name="l", interval_s=30, timeout_s=8, peer_id=listener.peer_id,
                        relays=(parse_relay(relay.addr("tcp")),), learn_addrs=False)

    async def main():
        async with probe_context(FAST) as ctx:
            first = await probe_peer(ctx, target)
            link = ctx.links[relay.addr("tcp")]
            await trio.sleep(CIRCUIT_SETTLE_S)
            second = await probe_peer(ctx, target)
            assert ctx.links[relay.addr("tcp")] is link and not link.is_closed
            await link.secured.close()  # the connection ends under the link; its reader sees the end
            await trio.sleep(CIRCUIT_SETTLE_S)
            third = await probe_peer(ctx, target)
            assert ctx.links[relay.addr("tcp")] is not link and link.is_closed
            # a link that looks alive but resets every stream (its end not seen yet): HOP fails on it,
            # it is dropped, and the path dials the relay again
            link = ctx.links[relay.addr("tcp")]

            async def reset(_protocol):
                from libp2p.network.stream.exceptions import StreamReset

                raise StreamReset("stream reset (remote)")

            link.open_selected_stream = reset
            await trio.sleep(CIRCUIT_SETTLE_S)
            fourth = await probe_peer(ctx, target)
            assert ctx.links[relay.addr("tcp")] is not link
            return first, second, third, fourth

    probes = trio.run(main)
    names = [[p.name for p in obs.peer.dials[0].phases] for obs in probes]
    assert all(obs.ok for obs in probes), probes
    assert names == [["relay-dial", "hop", "secure", "identify"], ["hop", "secure", "identify"],
                     ["relay-dial", "hop", "secure", "identify"], ["relay-dial", "hop", "secure", "identify"]], names


def test_websocket_dials_past_the_transports_tracking_limit_still_work(peers):
    """py-libp2p 0.8.1's WebSocket transport tracks each connection it dials and never forgets one;
    past its limit (1,000) every WebSocket dial fails "Maximum connections reached", which a watch
    would report as the node's failure. With the limit at 3, six probes of a WebSocket address."""
    relay, _ = peers
    target = PeerTarget(name="ws", interval_s=30, timeout_s=8, peer_id=relay.peer_id, addrs=(relay.addr("ws"),),
                        learn_addrs=False)

    async def main():
        async with probe_context(FAST) as ctx:
            network = ctx.host.get_network()
            (ws,) = [t for t in network.transport_manager.get_transports() if hasattr(t, "_untrack_connection")]
            ws._config.max_connections = 3
            out = [await probe_peer(ctx, target) for _ in range(6)]
            return out, len(ws._connections)

    probes, tracked = trio.run(main)
    assert all(obs.ok for obs in probes), [obs.error for obs in probes]
    assert tracked <= 1  # the last one, closed since; the others forgotten before each dial


def test_an_older_connection_does_not_make_a_probe_pass(peers):
    """The node stops listening while a connection the watch host made earlier lives on: the
    probe's own dial fails (refused), though the swarm still holds a working connection."""
    relay, _ = peers
    port = int(relay.addr("tcp").split("/tcp/")[1].split("/")[0])

    async def main():
        async with probe_context(FAST) as ctx, trio.open_nursery() as nursery:
            proxy_port, listener = await nursery.start(_proxy, port)
            addr = f"/ip4/127.0.0.1/tcp/{proxy_port}/p2p/{relay.peer_id}"
            target = PeerTarget(name="n", interval_s=30, timeout_s=8, peer_id=relay.peer_id, addrs=(addr,),
                                learn_addrs=False)
            old = await net.dial(ctx.host, addr, relay.peer_id)
            first = await probe_peer(ctx, target)
            await listener.aclose()  # the node stops listening; `old` goes on through the forwarder
            second = await probe_peer(ctx, target)
            stream = await net.open_stream(old, "/ipfs/id/1.0.0", 3)  # the old connection still works
            await net.close_quietly(stream)
            held = [c for c in ctx.host.get_network().get_connections() if not c.is_closed]
            # py-libp2p would trim a peer's connections past 3, oldest idle first (a held reservation's)
            config = ctx.host.get_network().connection_config
            assert config.max_connections_per_peer == config.max_connections == net.UNLIMITED_CONNECTIONS
            nursery.cancel_scope.cancel()
            return first, second, old, held

    first, second, old, held = trio.run(main)
    assert first.ok and first.peer.dials[0].reached
    assert old in held  # alive (and answered identify) when the second probe ran
    assert len(held) == 1  # the probes closed the connections they opened
    (d,) = second.peer.dials
    assert not second.ok and not d.reached and not d.secured and d.failed_phase == "dial", second
    assert second.error_kind == d.error_kind == "refused"


async def _silent_server(task_status=trio.TASK_STATUS_IGNORED):
    """Accepts TCP and never answers (a node that accepts but no longer completes a handshake)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream):
        with trio.move_on_after(60):
            while await stream.receive_some(4096):
                pass

    async with trio.open_nursery() as nursery:
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


def test_accepts_tcp_but_no_handshake_is_reached_not_secured():
    peer_id = fake_peer_id()

    async def main(timeouts: StepTimeouts, timeout_s: float):
        async with probe_context(timeouts) as ctx, trio.open_nursery() as nursery:
            port = await nursery.start(_silent_server)
            target = PeerTarget(name="mute", interval_s=30, timeout_s=timeout_s, peer_id=peer_id,
                                addrs=(f"/ip4/127.0.0.1/tcp/{port}",))
            obs = await probe_peer(ctx, target)
            nursery.cancel_scope.cancel()
            return obs

    # the dial step's own timeout
    obs = trio.run(main, StepTimeouts(relay_connect=1), 8)
    (d,) = obs.peer.dials
    assert d.addr.endswith(f"/p2p/{peer_id}") and d.transport == "tcp"
    assert d.reached and not d.secured and d.failed_phase == "secure" and d.error_kind == "timeout", d
    assert not obs.ok and not obs.timed_out and obs.failed_phase == "secure"
    assert [p.name for p in d.phases] == ["dial"]
    # the probe's own budget, shorter than the step's: the probe says it ran out, and where
    obs = trio.run(main, StepTimeouts(relay_connect=30), 1.5)
    assert obs.timed_out and not obs.ok and obs.failed_phase == "secure" and obs.error_kind == "timeout", obs
    assert obs.duration_s <= 1.5 + 0.3
    assert obs.peer.dials[0].reached and obs.peer.dials[0].failed_phase == "secure"


@pytest.mark.parametrize("mode, phase, kinds", [
    ("slowloris", "relay-dial", {"timeout", "negotiation_failed", "malformed"}),
    ("random", "relay-dial", {"malformed", "negotiation_failed", "closed", "reset", "security_failed"}),
    ("huge-length", "relay-dial", {"malformed"}),
    ("ws-200", "relay-dial", {"websocket_upgrade_failed"}),
    # real py-libp2p hosts whose streams answer with a 64 MiB message, or identify and then a flood
    ("stream-huge-length", {"relay-identify", "reserve"}, {"malformed", "timeout"}),
    ("stream-flood", "relay-identify", {"protocol_unsupported"}),
])
def test_hostile_relays_give_observations(spawn, mode, phase, kinds):
    proc = spawn([sys.executable, "-m", "p2pdiag.peers.hostile", "--mode", mode], f"hostile {mode}")
    hostile = ready_peer(proc)
    target = relay_target(hostile.addrs[0], timeout_s=2.5)
    began = time.monotonic()
    obs = run(probe_relay, target)
    assert time.monotonic() - began < 2.5 + 3  # the probe's budget, and the host's start and stop
    assert not obs.ok and obs.failed_phase in ({phase} if isinstance(phase, str) else phase), obs
    assert obs.duration_s <= 2.5 + 0.3 and obs.error_kind in kinds, obs
    assert obs.error and "\n" not in obs.error and len(obs.error) < 2000


def test_bad_relays_give_observations(spawn):
    unknown, silent = (spawn([sys.executable, "-m", "p2pdiag.peers.badrelay", "--mode", m], m)
                       for m in ("unknown-status", "silent"))
    unknown, silent = ready_peer(unknown), ready_peer(silent)
    unknown = run(probe_relay, relay_target(unknown.addrs[0]))
    assert not unknown.ok and unknown.failed_phase == "reserve" and unknown.error_kind == "UNKNOWN(999)", unknown
    silent = run(probe_relay, relay_target(silent.addrs[0], timeout_s=2))
    assert silent.timed_out and silent.failed_phase == "reserve" and silent.error_kind == "timeout", silent
    assert silent.relay.hop_offered is True and silent.duration_s <= 2.3


def test_upgrade_probe_maps_the_dial_verdict(peers):
    relay, listener = peers
    time.sleep(CIRCUIT_SETTLE_S)  # after the other tests' circuits to this listener (see above)
    target = UpgradeTarget(name="u", interval_s=300, timeout_s=30, peer_id=listener.peer_id,
                           relays=(parse_relay(relay.addr("tcp")),))
    obs = run(probe_upgrade, target)
    assert obs.module is Module.UPGRADE and obs.upgrade is not None, obs
    assert obs.upgrade.outcome == "upgraded" and obs.upgrade.exit_code == 0 and obs.ok, obs
    phases = phase_map(obs)
    assert {"relay-dial", "hop", "secure", "signaling", "ice", "dtls", "first-channel"} <= set(phases), phases
    assert all(s >= 0 for s in phases.values()) and phases["signaling"] > 0
    assert obs.duration_s <= 30


NO_RELAY = f"/ip4/127.0.0.1/tcp/9/p2p/{fake_peer_id()}"  # never dialed: the child ends before that


def test_upgrade_probe_says_a_p2pdiag_error_is_not_the_peers():
    bad = UpgradeTarget(name="u", interval_s=300, timeout_s=20, peer_id="not-a-peer-id",
                        relays=(parse_relay(NO_RELAY),))
    obs = run(probe_upgrade, bad)
    assert not obs.ok and obs.error_kind == P2PDIAG_ERROR and obs.upgrade.exit_code == 2, obs
    assert "not the peer's" in obs.error


def test_upgrade_probe_kills_a_child_that_overruns():
    # the child here is a stand-in for a p2pdiag that ignores its --timeout: a Python that sleeps
    target = UpgradeTarget(name="u", interval_s=300, timeout_s=2, peer_id=fake_peer_id(),
                           relays=(parse_relay(NO_RELAY),))

    async def main():
        async with probe_context(FAST) as ctx:
            ctx.p2pdiag_argv = (sys.executable, "-c", "import time; time.sleep(60)")
            return await probe_upgrade(ctx, target)

    began = time.monotonic()
    obs = trio.run(main)
    assert time.monotonic() - began < 2 + 3
    assert obs.timed_out and obs.failed_phase == "upgrade" and obs.error_kind == "timeout" and obs.upgrade is None


RELAY_SEED = "11" * 32


def test_holder_refreshes_and_comes_back_after_a_relay_restart(spawn):
    """A py relay with a 12 s TTL: refreshed before its expiry; restarted on the same port and key, the
    loss is seen at once and the reservation made again on the next try."""

    def start(port: int = 0) -> Peer:
        proc = spawn([sys.executable, "-m", "p2pdiag.peers.pyrelay", "--reservation-ttl-s", "12", "--tcp-port",
                      str(port), "--key-seed", RELAY_SEED], "py relay")
        ready = json.loads(proc.wait_line(lambda s: '"ready"' in s))
        return Peer(ready["peer_id"], ready["addrs"], proc)

    relay = start()
    port = int(relay.addr("tcp").split("/tcp/")[1].split("/")[0])
    held = hold_through_restart(relay_target(relay.addr("tcp"), interval_s=1.0, timeout_s=3),
                               lambda s: any(x.refreshes for x in s), relay.proc.stop, lambda: start(port))
    states = held.states
    made, refreshed = states[0], next(s for s in states if s.refreshes)
    assert made.up and made.refreshes == 0 and made.limit_duration_s == 3600 and made.expiry_unix_s > made.at_unix_s
    # 3/4 of the 12 s TTL is 9 s, its expiry less 60 s is already past: refreshed at the 5 s floor
    assert 4.9 <= refreshed.at_unix_s - made.at_unix_s <= 7.0, states
    assert refreshed.expiry_unix_s > made.expiry_unix_s
    down = next(s for s in states if not s.up)
    assert down.error_kind == "closed" and "closed" in down.error and held.loss_seen_s < 2.0, states
    back = states[-1]
    assert held.again.peer_id == relay.peer_id
    assert back.up and back.refreshes == 0 and back.at_unix_s > down.at_unix_s
    assert held.connections_left == []  # cancelled: its connection is closed
