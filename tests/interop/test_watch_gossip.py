"""The GossipSub probe (p2pdiag/watch/gossip.py) against a real js-libp2p fleet (interop/js/fleet-node.mjs,
with a js relay), a browser peer in its mesh, and the faults the fleet node injects through its control.

Every fleet here is a chain A - B - C (B dials A, C dials B; js-libp2p dials nobody on its own and
@libp2p/gossipsub does no peer exchange by default, checked below), with light peer a on A and b on C:
a canary between them must cross B.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import trio
from support import Peer
from support.watch import FLEET_TOPIC as TOPIC
from support.watch import control

from p2pdiag.probes import net
from p2pdiag.watch.gossip import CANARY_MARKER, GossipWatcher
from p2pdiag.watch.model import GossipTarget, Module
from p2pdiag.wire.identify import IDENTIFY_PROTOCOL, MAX_IDENTIFY_BYTES, Identify

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]

TIMEOUT_S = 4.0


def chain(fleet_node, *flags: str) -> tuple[Peer, Peer, Peer]:
    a = fleet_node(*flags)
    b = fleet_node(*flags, "--dial", a.addr("tcp"))
    c = fleet_node(*flags, "--dial", b.addr("tcp"))
    return a, b, c


def target(attach: tuple[str, str], watched: tuple[str, ...] = (), canaries: int = 3) -> GossipTarget:
    return GossipTarget(name="fleet", interval_s=10, timeout_s=TIMEOUT_S, topic=TOPIC, attach=attach,
                        watched=watched, canaries=canaries)


def assert_delivered(obs, a: Peer, c: Peer, canaries: int = 3) -> None:
    assert obs.module is Module.GOSSIPSUB and obs.ok, obs
    facts = obs.gossip
    assert facts.sent == facts.delivered == 2 * canaries
    for canary in facts.canaries:
        # a's canaries reach b from C, b's reach a from A: the fleet node each light peer hangs on
        assert canary.via == (c.peer_id if canary.sender == "a" else a.peer_id), canary
        assert 0 < canary.latency_s < TIMEOUT_S
    assert facts.mesh_peers == {"a": 1, "b": 1} and facts.topic_peers == {"a": 1, "b": 1}
    assert obs.duration_s < TIMEOUT_S


def test_canaries_cross_the_fleet_and_faults_d_and_e_are_reported(js_relay, fleet_node):
    relay = js_relay()
    a, b, c = chain(fleet_node, "--relay", relay.addr("tcp"))
    assert any("/p2p-circuit/p2p/" in addr for addr in a.addrs), a.addrs
    status_a = control(a, {"cmd": "status"})
    assert c.peer_id not in {x["remote_peer"] for x in status_a["connections"]}, "A and C must not meet"
    seen: dict = {}

    async def main() -> None:
        w = GossipWatcher(target((a.addr("tcp"), c.addr("ws")), watched=(a.peer_id, b.peer_id, c.peer_id)),
                          heartbeat_s=0.5)
        async with w:
            first = await w.probe()
            assert_delivered(first, a, c)
            # the light peers' own attach nodes are seen subscribed; B is no neighbour of theirs
            assert first.gossip.subscribed == {a.peer_id: True, b.peer_id: False, c.peer_id: True}
            seen["negotiated"] = w.negotiated()
            ids = w.light_peer_ids

            # a lost connection is dialled again at the next probe
            await net.hang_up(w._lights["b"].host, c.peer_id)
            assert_delivered(await w.probe(), a, c)

            # fault d: B stays connected and subscribed but forwards nothing
            control(b, {"cmd": "stop-forwarding", "topic": TOPIC})
            began = time.monotonic()
            lost = await w.probe()
            assert time.monotonic() - began < TIMEOUT_S + 1
            assert not lost.ok and lost.failed_phase == "canary" and lost.gossip.delivered == 0, lost
            assert lost.gossip.sent == 6 and "never reached light peer b" in lost.error
            assert not lost.timed_out
            status_b = control(b, {"cmd": "status"})["topics"][TOPIC]
            assert {a.peer_id, c.peer_id} <= set(status_b["mesh_peers"]), status_b

            # fault e: C killed outright; b's attach is gone, and the probe says so within its budget
            c.proc.signal(signal.SIGKILL)
            c.proc.wait(5)
            began = time.monotonic()
            dead = await w.probe()
            assert time.monotonic() - began < TIMEOUT_S + 1
            assert not dead.ok and dead.failed_phase == "attach", dead
            assert dead.error_kind in ("refused", "closed", "reset"), dead
            assert "light peer b" in dead.error and c.addr("ws") in dead.error
            # ... and so does every probe after it, without piling anything up
            again = await w.probe()
            assert not again.ok and again.failed_phase == "attach"
            seen["ids"] = ids

    trio.run(main)
    # meshsub 1.2 is what py-libp2p 0.8.1 and @libp2p/gossipsub 17.1.1 settle on
    assert seen["negotiated"] == {"a": "/meshsub/1.2.0", "b": "/meshsub/1.2.0"}
    # A knew light peer a only, never b (each light peer hangs on one node)
    status_a = control(a, {"cmd": "status"})
    peers_of_a = {x["remote_peer"] for x in status_a["connections"]}
    assert seen["ids"]["b"] not in peers_of_a


def test_a_browser_peer_in_the_mesh(js_relay, fleet_node, browser_peer):
    relay = js_relay()
    a, b, c = chain(fleet_node)
    browser = browser_peer(relay.addr("ws"), "--no-webrtc", "--topic", TOPIC, "--mesh", b.addr("ws"))
    assert browser.extra["topics"] == [TOPIC]
    # B sees the browser subscribed and in its mesh: a chat peer of the fleet
    deadline = time.monotonic() + 10
    while True:
        status = control(b, {"cmd": "status"})["topics"][TOPIC]
        if browser.peer_id in status["mesh_peers"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert browser.peer_id in status["topic_peers"] and browser.peer_id in status["mesh_peers"], status

    async def main() -> None:
        w = GossipWatcher(target((a.addr("tcp"), c.addr("tcp")), watched=(a.peer_id, browser.peer_id)),
                          heartbeat_s=0.5)
        async with w:
            obs = await w.probe()
            assert_delivered(obs, a, c)
            # GossipSub announces a subscription to direct peers only: a light peer sees its attach
            # node's, never the browser's (it hangs on B, a node no light peer is attached to)
            assert obs.gossip.subscribed == {a.peer_id: True, browser.peer_id: False}

    trio.run(main)
    # the browser, a mesh member, got the canaries of both light peers through B
    heads = [json.loads(line) for line in browser.proc.stderr if '"gossip_message"' in line]
    canaries = [h for h in heads if h["head"].encode().startswith(CANARY_MARKER)]
    assert len(canaries) >= 6, heads


def test_faults_a_and_b_on_a_fleet_node(fleet_node):
    # X in the middle: Y and Z dialled it, so both of its connections came through the listeners that close
    x = fleet_node()
    y = fleet_node("--dial", x.addr("tcp"))
    z = fleet_node("--dial", x.addr("ws"))
    ws = x.addr("ws").rsplit("/p2p/", 1)[0]
    tcp = x.addr("tcp").rsplit("/p2p/", 1)[0]

    async def identify_x() -> list[str]:
        host = net.make_host()
        async with net.running(host):
            conn = await net.dial(host, x.addr("tcp"), x.peer_id)
            stream = await net.open_stream(conn, IDENTIFY_PROTOCOL, 5)
            with trio.fail_after(5):
                message = Identify.decode(await net.read_delimited(stream, MAX_IDENTIFY_BYTES))
            return [net.multiaddr_to_string(raw) for raw in message.listen_addrs]

    # fault b: X stops announcing its WebSocket address; identify (a fresh one) no longer lists it
    before = trio.run(identify_x)
    assert ws in before and tcp in before, before
    answer = control(x, {"cmd": "remove-address", "addr": x.addr("ws")})
    assert x.addr("ws") not in answer["announced"] and x.addr("tcp") in answer["announced"]
    after = trio.run(identify_x)
    assert ws not in after and tcp in after, after

    # fault a: X's listeners close while it lives
    closed = control(x, {"cmd": "close-listeners"})
    assert set(closed["closed"]) == {tcp, ws}
    for addr in (tcp, ws):
        port = int(addr.split("/tcp/")[1].split("/")[0])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # the process did not notice: it still announces the TCP address it no longer accepts on
    assert x.addr("tcp") in closed["announced"]
    status = control(x, {"cmd": "status"})
    assert status["listen_addrs"] == []
    assert {y.peer_id, z.peer_id} <= {c["remote_peer"] for c in status["connections"]}, status

    async def main() -> None:
        # the existing connections still work: canaries between light peers on Y and Z cross X
        w = GossipWatcher(target((y.addr("tcp"), z.addr("tcp"))), heartbeat_s=0.5)
        async with w:
            assert_delivered(await w.probe(), y, z)
        # and a light peer that wants X itself is refused, as every new peer is
        w = GossipWatcher(target((y.addr("tcp"), x.addr("tcp")), canaries=1), heartbeat_s=0.5)
        async with w:
            obs = await w.probe()
            assert not obs.ok and obs.failed_phase == "attach" and obs.error_kind == "refused", obs
            assert "light peer b" in obs.error and "light peer a" not in obs.error

    trio.run(main)
