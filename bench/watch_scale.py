"""`p2pdiag watch` at scale: 200 targets at a 30 s interval against real local peers, its CPU, memory
and /metrics latency beside issue 12's goals.

    python bench/watch_scale.py [--duration SECONDS] [--targets N] [--interval S]
                                                       # defaults: 600 s, 200 targets, 30 s

Starts two py-libp2p relays (`python -m p2pdiag.peers.pyrelay`), a js-libp2p relay
(interop/js/relay.mjs) and four js fleet nodes (interop/js/fleet-node.mjs), each reserving on the
js relay; then the real `p2pdiag watch CONFIG --metrics 127.0.0.1:0 --json --trace FILE` as a
subprocess. The targets: a fifth are relay targets spread over the three relays (one per relay
reserves, the others probe only), the rest peer targets spread over the four fleet nodes, each
dialed directly over TCP and WebSocket and through the js relay. Several targets point at the same
node (about 40 names per node): each target is still probed on its own, so the work watch does
is that of N targets; only the peers behind them are fewer.

While it runs: the watch process's CPU time (utime + stime from /proc/PID/stat) and RSS every
10 s, and a GET of /metrics every second from a thread of this process, timed. At the end it
SIGTERMs watch, counts `watch.probed` events in the trace (and those not ok), and prints each
figure beside its goal: at most 25 % of one core on average, at most 300 MB, memory flat (RSS at
a quarter of the run against the end, as MB per hour), /metrics within 100 ms. The reference in
the same run: CPU seconds per probe. The window measured starts when watch serves /metrics (its
start-up, importing py-libp2p, is outside the average and printed apart).

The peers run on the same two cores and are not counted in watch's CPU. The load average is
printed first: /metrics latency depends on what else the machine runs, watch's own CPU time much
less. Several targets share a node (40-70 a node), all dialed from watch's one peer id; the failed
probes are counted by phase and kind at the end, so read the CPU figure with them.

Figures (2026-12-07, `--duration 3600`, the test suite running beside it for 48 minutes; docs/performance.md):
    CPU 20.4 % of one core (goal 25 %: met), 30.7 ms per probe; RSS peak 114.5 MB (goal 300: met),
    113.2 MB at 1/4 -> 114.3 MB at the end (+1.3 MB/hour: flat); /metrics p50 3.4 ms, p99 40.6 ms,
    max 179.5 ms (one of 3,598 past 100 ms); 24,000 probes, 2,742 not ok (relay probes of the py
    relays, relay-dial closed or reset). Before 2026-12-07's work: 48.5-60.7 %, 72.9-91.3 ms per probe.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Peer, Proc, _ready_json

TOPIC = "bench/watch-scale"
SAMPLE_S = 10.0
GOAL_CPU = 25.0  # % of one core, average
GOAL_RSS_MB = 300.0
GOAL_METRICS_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start_peers(procs: list[Proc]) -> tuple[list[str], list[Peer]]:
    """Relay addresses (py, py, js) and the fleet nodes reserving on the js relay."""
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]
    relays = []
    for i in range(2):
        proc = Proc([sys.executable, "-m", "p2pdiag.peers.pyrelay", "--max-reservations", "1000"], f"py relay {i}")
        procs.append(proc)
        relays.append(_ready_json(proc)["addrs"][0])
    proc = Proc([node, str(JS_DIR / "relay.mjs"), "--no-ws", "--max-reservations", "1000"], "js relay")
    procs.append(proc)
    js_relay = next(a for a in _ready_json(proc)["addrs"] if "/ws" not in a)
    relays.append(js_relay)
    nodes = []
    for i in range(4):
        proc = Proc([node, str(JS_DIR / "fleet-node.mjs"), "--topic", TOPIC, "--relay", js_relay], f"fleet node {i}")
        procs.append(proc)
        ready = _ready_json(proc)
        nodes.append(Peer(ready["peer_id"], ready["addrs"], proc, ready))
    return relays, nodes


def config(relays: list[str], nodes: list[Peer], targets: int, interval_s: float) -> str:
    n_relay = max(len(relays), targets // 5)
    out = [f"interval = {interval_s:g}", f"timeout = {min(10.0, interval_s / 2):g}", ""]
    for i in range(n_relay):
        out += ["[[relay]]", f'name = "relay-{i}"', f'addr = "{relays[i % len(relays)]}"',
                f"reserve = {'true' if i < len(relays) else 'false'}", ""]
    js_relay_target = f"relay-{len(relays) - 1}"  # the reserving target on the js relay
    for i in range(targets - n_relay):
        node = nodes[i % len(nodes)]
        out += ["[[peer]]", f'name = "peer-{i}"', f'addrs = ["{node.addr("tcp")}", "{node.addr("ws")}"]',
                f'relays = ["{js_relay_target}"]', ""]
    return "\n".join(out)


class Scraper(threading.Thread):
    """GET /metrics every second; the latency of each answer (None for a failed one)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.times, self.failed = url, threading.Event(), [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    r.read()
                self.times.append(time.perf_counter() - t0)
            except OSError:
                self.failed += 1
            self.stop.wait(max(0.0, 1.0 - (time.perf_counter() - t0)))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--keep-trace", type=Path, metavar="FILE", help="copy watch's trace here at the end")
    args = ap.parse_args()
    procs: list[Proc] = []
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    try:
        relays, nodes = start_peers(procs)
        with tempfile.TemporaryDirectory() as tmp:
            conf = Path(tmp) / "watch.toml"
            conf.write_text(config(relays, nodes, args.targets, args.interval))
            trace = Path(tmp) / "watch.jsonl"
            began = time.monotonic()
            watch = Proc([sys.executable, "-m", "p2pdiag", "watch", str(conf), "--metrics", "127.0.0.1:0", "--json",
                          "--trace", str(trace)], "p2pdiag watch")
            procs.append(watch)
            pid = watch.popen.pid
            line = None
            deadline = time.monotonic() + 120
            while line is None and time.monotonic() < deadline:
                line = next((s for s in watch.stderr if "/metrics and /probe on http://" in s), None)
                time.sleep(0.05)
            assert line is not None, "".join(watch.stderr)[-3000:]
            url = line.split(" on ", 1)[1].strip() + "metrics"
            startup_s, startup_cpu = time.monotonic() - began, cpu_s(pid)
            print(f"watch up in {startup_s:.1f} s ({startup_cpu:.1f} s CPU), {args.targets} targets every "
                  f"{args.interval:g} s, running {args.duration:g} s", flush=True)
            scraper = Scraper(url)
            scraper.start()
            t0, cpu0 = time.monotonic(), cpu_s(pid)
            samples: list[tuple[float, float, float]] = []  # (seconds since t0, CPU s since t0, RSS MB)
            while (elapsed := time.monotonic() - t0) < args.duration:
                if watch.popen.poll() is not None:
                    raise SystemExit(f"watch exited {watch.popen.returncode} after {elapsed:.0f} s:\n"
                                     + "".join(watch.stderr)[-4000:])
                samples.append((elapsed, cpu_s(pid) - cpu0, rss_mb(pid)))
                print(f"  {elapsed:6.0f} s  CPU {samples[-1][1]:7.1f} s  RSS {samples[-1][2]:6.1f} MB", flush=True)
                time.sleep(min(SAMPLE_S, args.duration - elapsed))
            wall, cpu = time.monotonic() - t0, cpu_s(pid) - cpu0
            samples.append((wall, cpu, rss_mb(pid)))
            scraper.stop.set()
            scraper.join(15)
            watch.signal(signal.SIGTERM)
            code = watch.wait(60)
            if args.keep_trace is not None:
                shutil.copyfile(trace, args.keep_trace)
            events = [json.loads(s) for s in trace.read_text().splitlines()[1:]]
        started_t = next(e["t_s"] for e in events if e["type"] == "watch.started")
        probed = [e for e in events if e["type"] == "watch.probed"]
        in_window = [e for e in probed if e["t_s"] >= started_t]
        failed = [e for e in probed if not e["ok"]]
        kinds: dict[str, int] = {}
        for e in failed:
            key = f"{e['module']} {e.get('failed_phase')} {e.get('error_kind')}"
            kinds[key] = kinds.get(key, 0) + 1
        quarter = min(samples, key=lambda s: abs(s[0] - wall / 4))
        slope = (samples[-1][2] - quarter[2]) / ((wall - quarter[0]) / 3600)
        ms = [t * 1000 for t in scraper.times]
        cpu_pct = 100 * cpu / wall
        peak = max(s[2] for s in samples)
        print(f"\nwatch exit {code}; last trace event {events[-1]['type']}; measured {wall:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f} at end")
        print(f"{'figure':<34}{'measured':>22}   goal (issue 12)")
        rows = [
            ("CPU, average, % of one core", f"{cpu_pct:.1f} %", f"<= {GOAL_CPU:g} %", cpu_pct <= GOAL_CPU),
            ("RSS, peak", f"{peak:.1f} MB", f"<= {GOAL_RSS_MB:g} MB", peak <= GOAL_RSS_MB),
            ("RSS at 1/4 -> end", f"{quarter[2]:.1f} -> {samples[-1][2]:.1f} MB", "flat", None),
            ("RSS slope after 1/4", f"{slope:+.1f} MB/hour", "flat", None),
            ("/metrics p50 / p99 / max", f"{pct(ms, .5):.1f} / {pct(ms, .99):.1f} / {max(ms):.1f} ms",
             f"<= {GOAL_METRICS_MS:g} ms", max(ms) <= GOAL_METRICS_MS),
            ("/metrics scrapes (failed)", f"{len(ms)} ({scraper.failed})", "", None),
            ("probes done (not ok)", f"{len(probed)} ({len(failed)})", f"~{args.targets * wall / args.interval:.0f}",
             None),
        ]
        for name, value, goal, met in rows:
            mark = "" if met is None else ("  met" if met else "  MISSED")
            print(f"{name:<34}{value:>22}   {goal}{mark}")
        print(f"reference: CPU per probe {1000 * cpu / max(1, len(in_window)):.1f} ms "
              f"({cpu:.1f} s CPU / {len(in_window)} probes after start-up); start-up {startup_cpu:.1f} s CPU")
        print(f"median RSS {statistics.median(s[2] for s in samples):.1f} MB over {len(samples)} samples")
        for key, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"  not ok: {n:5d}  {key}")
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
