"""CPU per watch probe on watch's own connections (probes/yamux.py over py-libp2p's transports and
Noise) beside py-libp2p's swarm connections, in one run against the same js-libp2p peers.

    python bench/watch_probe_cost.py [--probes N]      # default 40 of each kind and wiring

Starts a js relay (interop/js/relay.mjs) and a js fleet node (interop/js/fleet-node.mjs) reserving
on it, then in this process runs N peer probes (the node over TCP, over WebSocket and through the
relay, as bench/watch_scale.py's targets) and N relay probes (connect, identify, RESERVE), first
with `probe_context()` (watch's wiring), then with a ProbeContext on the same host without its
nursery (the swarm's connections, watch's wiring before 2026-12-07). Each figure is the process's
CPU time (time.process_time) over the N probes, divided by N; the probes run one after another,
50 ms apart.

Figures (2026-12-07, 40 probes each, load average 0.5): see docs/performance.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import trio
from support import JS_DIR, Peer, Proc, _ready_json

from p2pdiag.targets import parse_relay
from p2pdiag.watch import probes
from p2pdiag.watch.model import PeerTarget, RelayTarget


def start(procs: list[Proc]) -> tuple[str, Peer]:
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]
    proc = Proc([node, str(JS_DIR / "relay.mjs"), "--no-ws", "--max-reservations", "1000"], "js relay")
    procs.append(proc)
    relay = next(a for a in _ready_json(proc)["addrs"] if "/ws" not in a)
    proc = Proc([node, str(JS_DIR / "fleet-node.mjs"), "--topic", "bench/probe-cost", "--relay", relay], "fleet node")
    procs.append(proc)
    ready = _ready_json(proc)
    return relay, Peer(ready["peer_id"], ready["addrs"], proc, ready)


async def cost(ctx: probes.ProbeContext, target, n: int) -> tuple[float, int]:
    """(ms of CPU per probe, probes not ok), after one probe not counted (imports, first connections)."""
    probe = probes.probe_peer if isinstance(target, PeerTarget) else probes.probe_relay
    await probe(ctx, target)
    bad, began = 0, time.process_time()
    for _ in range(n):
        bad += not (await probe(ctx, target)).ok
        await trio.sleep(0.05)
    return 1000 * (time.process_time() - began) / n, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probes", type=int, default=40)
    n = ap.parse_args().probes
    procs: list[Proc] = []
    try:
        relay, node = start(procs)
        peer = PeerTarget(name="node", interval_s=30, timeout_s=10, peer_id=node.peer_id,
                          addrs=(node.addr("tcp"), node.addr("ws")), relays=(parse_relay(relay),))
        relay_target = RelayTarget(name="relay", interval_s=30, timeout_s=10, relay=parse_relay(relay))

        async def run() -> list[tuple[str, str, float, int]]:
            rows = []
            async with probes.probe_context() as ctx:
                swarm = probes.ProbeContext(ctx.host, ctx.timeouts)  # no nursery: the swarm's connections
                for wiring, c in (("watch's own", ctx), ("py-libp2p swarm", swarm)):
                    for kind, target in (("peer (tcp, ws, relayed)", peer), ("relay", relay_target)):
                        rows.append((wiring, kind, *await cost(c, target, n)))
            return rows

        rows = trio.run(run)
        print(f"{'connections':<18}{'probe':<26}{'CPU per probe':>15}{'not ok':>8}")
        for wiring, kind, ms, bad in rows:
            print(f"{wiring:<18}{kind:<26}{ms:>12.1f} ms{bad:>8}")
        by = {(w, k): ms for w, k, ms, _ in rows}
        own = "watch's own"
        for kind in ("peer (tcp, ws, relayed)", "relay"):
            print(f"{kind}: the swarm's / watch's own = {by[('py-libp2p swarm', kind)] / by[(own, kind)]:.2f}x")
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
