"""How fast watch's `/metrics` answers with 200 targets' series loaded, while a CPU-bound load runs.

    python bench/watch_metrics.py [REQUESTS] [TARGETS] [--one-loop]   # defaults: 200 requests, 200 targets

watch's real server (`p2pdiag/watch/http.py`, its default Limits: the exposition rendered ahead
every 2 s when changed) and `WatchMetrics` wired as `watch` wires them: the server in a thread and
trio loop of its own (`serve_in_thread`), the metrics fed from the main trio loop, where a fake
probe load runs: 200 targets (peers with four addresses dialed directly and through a relay, relays
holding a reservation, gossipsub canaries) re-observed, and a task that burns the CPU in slices
with a checkpoint between, in pure Python that holds the GIL as probes' Python work does (so it
takes the interpreter from the server's thread as a real load would): 5 ms slices half the time
(twice watch's CPU budget of 25 % of a core) or all the time, and 50 ms slices half the time (a
py-libp2p handshake's stretch without a checkpoint). `--one-loop` serves from the main loop itself
instead (`serve` awaited there: watch's wiring before the server had its own thread). The client
is another process (so it takes no GIL from the server) and GETs /metrics REQUESTS times, 30 ms
after each answer, so a run spans several of the 2 s re-renderings (a scrape may meet one, as a
real one does). Prints the exposition's size and the latency percentiles. Issue 12 asks for
/metrics within 100 ms while probes run.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio.lowlevel

from p2pdiag.watch.http import Limits, ProbeBridge, parse_target, serve, serve_in_thread
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
    time.sleep(0.03)
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


async def burn(stop: trio.Event, duty: float, slice_s: float) -> None:
    """CPU in SLICE_S slices, DUTY of the time (1.0: the event loop never idles), holding the GIL
    (hashlib would release it for a large buffer: a load no Python probe is)."""
    while not stop.is_set():
        t_end = time.perf_counter() + slice_s
        while time.perf_counter() < t_end:
            sum(range(2000))
        await trio.sleep(slice_s * (1 - duty) / duty)


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


def run(requests: int, targets: int, duty: float, slice_s: float, one_loop: bool) -> tuple[list[float], int]:
    metrics = WatchMetrics()
    for obs in observations(targets, 0):
        metrics.observe(obs)
    result: dict = {}

    async def loaded(port: int | None) -> None:
        """The load in this loop and the client; with no PORT, the server in this loop too."""
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            if port is None:
                port = await nursery.start(partial(serve, limits=Limits()), ("127.0.0.1", 0), metrics, parse_target,
                                           None)
            if duty > 0:
                nursery.start_soon(burn, stop, duty, slice_s)
                nursery.start_soon(feed, metrics, targets, stop, 2.0 if duty < 1 else 0.0)
            client = await trio.run_process([sys.executable, "-c", CLIENT, str(port), str(requests)],
                                            capture_stdout=True)
            result["out"] = client.stdout.decode()
            stop.set()
            nursery.cancel_scope.cancel()

    async def main() -> None:
        if one_loop:
            await loaded(None)
            return
        async with serve_in_thread(("127.0.0.1", 0), metrics, parse_target, ProbeBridge(), limits=Limits()) as port:
            await loaded(port)

    trio.run(main)
    rows = [line.split() for line in result["out"].splitlines()]
    return sorted(float(t) for t, _ in rows), int(rows[-1][1])


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    one_loop = "--one-loop" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--one-loop"]
    requests = int(args[0]) if args else 200
    targets = int(args[1]) if len(args) > 1 else 200
    print("the server in the main loop (--one-loop)" if one_loop else "the server in a thread and loop of its own")
    for duty, slice_s, what in (
            (0.0, 0.005, "no load"),
            (0.5, 0.005, "loop 50 % busy in 5 ms slices, every target re-observed each 2 s"),
            (1.0, 0.005, "loop 100 % busy in 5 ms slices, targets re-observed without pause"),
            (0.5, 0.05, "loop 50 % busy in 50 ms slices, every target re-observed each 2 s")):
        times, size = run(requests, targets, duty, slice_s, one_loop)
        ms = [t * 1000 for t in times]
        print(f"{what}: {targets} targets, /metrics {size / 1024:.0f} KiB, {requests} requests: "
              f"p50 {pct(ms, 0.5):.1f} ms, p90 {pct(ms, 0.9):.1f} ms, p99 {pct(ms, 0.99):.1f} ms, max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
