"""p2pdiag's own connections (its TCP and WebSocket dials, probes/noise.py, probes/yamux.py) against
js-libp2p 3.x, with no py-libp2p in the process: the js relay (interop/js/relay.mjs) and a js Node
listener reached directly and through that relay, each dial its own handshake with js-libp2p's
Noise. The probes run in a child process that reports what `sys.modules` held at its end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from support import ROOT
from test_watch_probes_js import direct, start_js, start_listener

pytestmark = pytest.mark.interop

CHILD = textwrap.dedent("""
    import json, sys
    import trio
    from p2pdiag.probes.timeouts import StepTimeouts
    from p2pdiag.targets import parse_relay
    from p2pdiag.watch.model import PeerTarget, RelayTarget
    from p2pdiag.watch.probes import own_probe_context, probe_peer, probe_relay

    relay_tcp, relay_ws, peer_id, *addrs = sys.argv[1:]
    FAST = StepTimeouts(relay_connect=5, identify=5, hop=5, reserve=5, secure=5)

    async def main():
        async with own_probe_context(FAST) as ctx:
            relays = [await probe_relay(ctx, RelayTarget(name=n, interval_s=30, timeout_s=10, relay=parse_relay(a)))
                      for n, a in (("tcp", relay_tcp), ("ws", relay_ws))]
            peer = await probe_peer(ctx, PeerTarget(name="js", interval_s=30, timeout_s=10, peer_id=peer_id,
                                                    addrs=tuple(addrs), relays=(parse_relay(relay_tcp),)))
            # a peer id that is not the listener's, on its own TCP address
            wrong = await probe_peer(ctx, PeerTarget(name="wrong", interval_s=30, timeout_s=10,
                                                     peer_id=ctx.host.peer_id,
                                                     addrs=tuple(a.split("/p2p/")[0] for a in addrs)))
            return ctx.host.peer_id, relays, peer, wrong

    me, relays, peer, wrong = trio.run(main)
    print(json.dumps({
        "me": me,
        "relays": [{"ok": r.ok, "agent": r.relay.agent, "reservation": r.relay.reservation_status,
                    "error": r.error} for r in relays],
        "peer": {"ok": peer.ok, "agent": peer.peer.agent, "error": peer.error,
                 "dials": [{"transport": d.transport, "ok": d.ok, "secured": d.secured, "error": d.error}
                           for d in peer.peer.dials]},
        "wrong": [{"transport": d.transport, "reached": d.reached, "secured": d.secured,
                   "failed_phase": d.failed_phase, "error_kind": d.error_kind} for d in wrong.peer.dials],
        "libp2p_loaded": sorted(m for m in sys.modules if m == "libp2p" or m.startswith("libp2p.")),
    }))
""")


def test_own_connections_reach_js_libp2p_without_py_libp2p(spawn, node22):
    relay = start_js(spawn, node22, "relay.mjs")
    listener = start_listener(spawn, node22, relay)
    addrs = [a for a in direct(listener) if "/tcp/" in a]
    out = subprocess.run([sys.executable, "-c", CHILD, relay.addr("tcp"), relay.addr("ws"), listener.peer_id, *addrs],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["libp2p_loaded"] == [], got["libp2p_loaded"][:10]
    for relay_obs in got["relays"]:  # over TCP and over WebSocket: Noise with the js relay, identify, RESERVE
        assert relay_obs["ok"] and "js-libp2p" in relay_obs["agent"] and relay_obs["reservation"] == "OK", relay_obs
    peer = got["peer"]
    assert peer["ok"] and "js-libp2p" in peer["agent"], peer
    transports = {d["transport"]: d for d in peer["dials"]}
    assert set(transports) == {"tcp", "ws", "p2p-circuit"}, peer["dials"]
    assert all(d["ok"] and d["secured"] for d in transports.values()), peer["dials"]  # Noise through the relay too
    # the listener's key is not the peer id dialed: told apart as before (py-libp2p's Noise said it so too)
    assert got["wrong"] and all(d["reached"] and not d["secured"] and d["failed_phase"] == "secure"
                                and d["error_kind"] == "peer_id_mismatch" for d in got["wrong"]), got["wrong"]


DIAL_CHILD = textwrap.dedent("""
    import atexit, json, sys
    atexit.register(lambda: sys.stderr.write("LOADED " + json.dumps(
        sorted(m for m in sys.modules if m == "libp2p" or m.startswith("libp2p."))) + "\\n"))
    from p2pdiag.cli import main
    sys.argv = ["p2pdiag", *sys.argv[1:]]
    main()
""")


def test_a_whole_dial_with_the_upgrade_runs_without_py_libp2p(spawn, node22):
    """`p2pdiag dial` through a js relay to a js Node listener, the WebRTC upgrade included, as a
    process: the verdict is the usual one, and py-libp2p was never imported (its import alone took
    1.3 s of a 3 s dial)."""
    relay = start_js(spawn, node22, "relay.mjs")
    listener = start_listener(spawn, node22, relay)
    target = next(a for a in listener.addrs if "/webrtc/" in a and "/ws/" not in a)
    out = subprocess.run([sys.executable, "-c", DIAL_CHILD, "dial", target, "--ice-address", "127.0.0.1", "--json"],
                         capture_output=True, text=True, timeout=90, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    verdict = json.loads(out.stdout)
    assert verdict["outcome"] == "upgraded", (verdict["headline"], out.stderr[-2000:])
    assert {f["code"] for f in verdict["findings"]} <= {"relay-limited", "relay-limit-unit"}, verdict["findings"]
    loaded = json.loads(next(line for line in out.stderr.splitlines() if line.startswith("LOADED "))[7:])
    assert loaded == [], loaded[:10]
