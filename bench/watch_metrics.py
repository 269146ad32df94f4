"""How fast watch's `/metrics` answers with 200 targets' series loaded, while a CPU-bound load runs.

    python bench/watch_metrics.py [REQUESTS] [TARGETS]     # defaults: 200 requests, 200 targets

watch's real server (`p2pdiag/watch/http.py`, its default Limits: the exposition rendered ahead
every 2 s when changed) and `WatchMetrics` in one trio run, as `watch` runs them: 200 targets
(peers with four addresses dialed directly and through a relay, relays holding a reservation,
gossipsub canaries), re-observed, beside a fake probe load in the same event loop: a task that
burns the CPU in 5 ms slices (the sha256 of a buffer) with a checkpoint between, as probes' Python
work does, half the time (twice watch's CPU budget of 25 % of a core) or all the time. The
client is another process (so it takes no GIL from the server) and GETs /metrics REQUESTS times,
one after another. Prints the exposition's size and the latency percentiles. Issue 12 asks for
/metrics within 100 ms while probes run.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from functools import partial
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio.lowlevel

from p2pdiag.watch.http import Limits, parse_target, serve
from p2pdiag.watch.metrics import WatchMetrics
from p2pdiag.watch.model import (
    AddrDial,
    CanaryResult,
    GossipFacts,
    Module,
    Observation,
    PeerFacts,
    Phase,
    RelayFacts,
    ReservationState,
)

PEER = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
CLIENT = r"""
import sys, time, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        size = len(r.read())
    print(time.perf_counter() - t0, size, flush=True)
"""


def observations(targets: int, r: int) -> list[Observation]:
    out = []
    for t in range(targets):
        kind = t % 4
        if kind in (0, 1):
            listen = tuple(f"/ip4/10.{t % 250}.0.{i}/tcp/{4000 + i}{'/ws' if i % 2 else ''}/p2p/{PEER}"
                           for i in range(3))
            listen += (f"/ip4/10.9.9.9/tcp/4001/p2p/12D3KooWRelay/p2p-circuit/p2p/{PEER}",)
            dials = tuple(AddrDial(a, "ws" if "/ws/" in a else "tcp", None, ok=(r + i) % 7 != 0, reached=True,
                                   secured=True) for i, a in enumerate(listen[:3]))
            dials += (AddrDial(f"/p2p/{PEER}", "p2p-circuit", "relay-1", ok=True, reached=True, secured=True),)
            out.append(Observation(module=Module.PEER, target=f"peer-{t}", ok=True, started_unix_s=time.time(),
                                   duration_s=0.2, phases=(Phase("dial", 0.01), Phase("secure", 0.02),
                                                           Phase("identify", 0.03)),
                                   peer=PeerFacts(agent="js-libp2p/3.3.11", listen_addrs=listen, identified=True,
                                                  dials=dials)))
        elif kind == 2:
            out.append(Observation(module=Module.RELAY, target=f"relay-{t}", ok=True, started_unix_s=time.time(),
                                   duration_s=0.1, phases=(Phase("relay-dial", 0.01), Phase("reserve", 0.02)),
                                   relay=RelayFacts(agent="go-libp2p", hop_offered=True, reservation_status="OK",
                                                    limit_duration_s=120, limit_data_bytes=131072)))
        else:
            canaries = tuple(CanaryResult("a" if i % 2 else "b", i, True, 0.02 * (i + 1)) for i in range(6))
            out.append(Observation(module=Module.GOSSIPSUB, target=f"topic-{t}", ok=True, started_unix_s=time.time(),
                                   duration_s=1.0, gossip=GossipFacts(canaries=canaries, mesh_peers={"a": 4, "b": 3},
                                                                      topic_peers={"a": 8, "b": 8},
                                                                      subscribed={PEER: True})))
    return out


async def burn(stop: trio.Event, duty: float) -> None:
    """CPU in 5 ms slices, DUTY of the time (1.0: the event loop never idles)."""
    block = bytes(1 << 16)
    while not stop.is_set():
        t_end = time.perf_counter() + 0.005
        while time.perf_counter() < t_end:
            hashlib.sha256(block).digest()
        await trio.sleep(0.005 * (1 - duty) / duty)


async def feed(metrics: WatchMetrics, targets: int, stop: trio.Event, period_s: float) -> None:
    """Every target re-observed each PERIOD_S (watch's real pace is one probe per target per 30 s)."""
    r = 0
    while not stop.is_set():
        t0 = trio.current_time()
        for obs in observations(targets, r):
            metrics.observe(obs)
            await trio.lowlevel.checkpoint()
        for t in range(2, targets, 4):
            metrics.reservation(ReservationState(f"relay-{t}", up=True, at_unix_s=time.time(),
                                                 expiry_unix_s=time.time() + 3600, refreshes=r))
        r += 1
        await trio.sleep(max(0.0, period_s - (trio.current_time() - t0)))


def run(requests: int, targets: int, duty: float) -> tuple[list[float], int]:
    metrics = WatchMetrics()
    for obs in observations(targets, 0):
        metrics.observe(obs)
    result: dict = {}
    port_ready = threading.Event()

    async def main() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, limits=Limits()), ("127.0.0.1", 0), metrics, parse_target,
                                       None)
            if duty > 0:
                nursery.start_soon(burn, stop, duty)
                nursery.start_soon(feed, metrics, targets, stop, 2.0 if duty < 1 else 0.0)
            result["port"] = port
            port_ready.set()
            client = await trio.run_process([sys.executable, "-c", CLIENT, str(port), str(requests)],
                                            capture_stdout=True)
            result["out"] = client.stdout.decode()
            stop.set()
            nursery.cancel_scope.cancel()

    trio.run(main)
    rows = [line.split() for line in result["out"].splitlines()]
    return sorted(float(t) for t, _ in rows), int(rows[-1][1])


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    targets = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    for duty, what in ((0.0, "no load"), (0.5, "loop 50 % busy, every target re-observed each 2 s"),
                       (1.0, "loop 100 % busy, targets re-observed without pause")):
        times, size = run(requests, targets, duty)
        ms = [t * 1000 for t in times]
        print(f"{what}: {targets} targets, /metrics {size / 1024:.0f} KiB, {requests} requests: "
              f"p50 {pct(ms, 0.5):.1f} ms, p90 {pct(ms, 0.9):.1f} ms, p99 {pct(ms, 0.99):.1f} ms, max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
