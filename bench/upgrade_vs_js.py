"""The WebRTC upgrade, p2pdiag beside js-libp2p, on the same js relay and js Node listener.

    python bench/upgrade_vs_js.py [N] [--no-udp-blocked]   # N dials each (default 20)

Prints medians of:
- dial start → WebRTC connection up: p2pdiag (`p2pdiag dial`, from relay.dial_started to
  webrtc.upgrade_succeeded in its trace) and the js-libp2p Node dialer (dialer.mjs's
  time_to_connection_ms, from its dial() call, N attempts in one Node process), and their ratio;
- the whole process, wall time, start to exit: `p2pdiag dial TARGET --json` (the same runs), and
  the js dialer as one Node process per dial (`dialer.mjs --repeat 1`: start, a fresh node, the
  dial, one ping, stop), and their ratio;
- p2pdiag's relayed connection → first WebRTC stream open (circuit.secured to the first
  webrtc.channel_opened);
- with UDP blocked (a network namespace of its own whose firewall drops UDP on output; needs root;
  left out with --no-udp-blocked): offer sent → verdict (webrtc.upgrade_failed); and the same with a
  `reject` rule instead of `drop`.
Everything runs on 127.0.0.1 (p2pdiag with --ice-address 127.0.0.1; the js peers bind there).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

UDP_BLOCKED = ("ip link set lo up && nft add table inet b && nft add chain inet b out "
               "'{ type filter hook output priority 0; }' && nft add rule inet b out meta l4proto udp drop")
UDP_REJECTED = UDP_BLOCKED.removesuffix("drop") + "reject"


def events(trace: Path) -> list[dict]:
    return [json.loads(line) for line in trace.read_text().splitlines()[1:] if line.strip()]


def t_of(evs: list[dict], kind: str) -> float | None:
    return next((e["t_s"] for e in evs if e["type"] == kind), None)


def timed_run(argv: list[str], timeout: float) -> tuple[float, str]:
    """Wall time of one process, start to exit, and its stdout."""
    began = time.perf_counter()
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         text=True, timeout=timeout, check=False).stdout
    return time.perf_counter() - began, out


def p2pdiag_runs(target: str, n: int, tmp: Path) -> tuple[list[float], list[float], list[float], int]:
    total, relayed_to_stream, wall, failures = [], [], [], 0
    for i in range(n):
        trace = tmp / f"p-{i}.jsonl"
        took, _ = timed_run([sys.executable, "-m", "p2pdiag", "dial", target, "--ice-address", "127.0.0.1",
                             "--trace", str(trace), "--json"], 120)
        wall.append(took)
        evs = events(trace)
        up = t_of(evs, "webrtc.upgrade_succeeded")
        if up is None:
            failures += 1
            continue
        total.append(up - t_of(evs, "relay.dial_started"))
        relayed_to_stream.append(t_of(evs, "webrtc.channel_opened") - t_of(evs, "circuit.secured"))
    return total, relayed_to_stream, wall, failures


def js_runs(node: str, target: str, n: int) -> tuple[list[float], int]:
    out = subprocess.run([node, str(JS_DIR / "dialer.mjs"), "--target", target, "--repeat", str(n), "--quiet"],
                         capture_output=True, text=True, timeout=60 + 10 * n, check=False).stdout
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ok = [r["time_to_connection_ms"] / 1000 for r in results if r.get("ok") and r.get("webrtc")]
    return ok, len(results) - len(ok)


def js_process_runs(node: str, target: str, n: int) -> tuple[list[float], int]:
    """One Node process per dial: its wall time, start to exit."""
    wall, failures = [], 0
    for _ in range(n):
        took, out = timed_run([node, str(JS_DIR / "dialer.mjs"), "--target", target, "--quiet"], 70)
        results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if results and all(r.get("ok") and r.get("webrtc") for r in results):
            wall.append(took)
        else:
            failures += 1
    return wall, failures


def udp_blocked_runs(n: int, tmp: Path, rule: str = UDP_BLOCKED) -> list[float] | str:
    if os.geteuid() != 0:
        return "needs root (a network namespace with a firewall)"
    times = []
    for i in range(n):
        trace = tmp / f"u-{i}.jsonl"
        argv = [sys.executable, str(ROOT / "tests" / "support" / "scenario.py"), "initiator", "--relay", "js",
                "--remote", "js", "--trace", str(trace)]
        subprocess.run(["unshare", "-n", "sh", "-c", f"{rule} && exec {shlex.join(argv)}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=120,
                       check=False)
        evs = events(trace)
        offer = next((e["t_s"] for e in evs if e["type"] == "webrtc.description_signaled" and e.get("sent")), None)
        failed = t_of(evs, "webrtc.upgrade_failed")
        if offer is not None and failed is not None:
            times.append(failed - offer)
    return times


def med(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms" if values else "      n/a"


def ratio(ours: list[float], theirs: list[float]) -> str:
    if not ours or not theirs:
        return ""
    return f"   ratio p2pdiag/js {statistics.median(ours) / statistics.median(theirs):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=20, help="dials each (default 20)")
    parser.add_argument("--no-udp-blocked", action="store_true",
                        help="leave out the UDP-blocked runs (they need a network namespace)")
    args = parser.parse_args()
    n = args.n
    load_before = os.getloadavg()
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            relay = Proc([node, str(JS_DIR / "relay.mjs")], "js relay")
            procs.append(relay)
            listener = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", _ready_json(relay)["addrs"][0]],
                            "js listener")
            procs.append(listener)
            target = next(a for a in _ready_json(listener)["addrs"] if "/webrtc/" in a and "/ws/" not in a)
            p_total, p_stream, p_wall, p_fail = p2pdiag_runs(target, n, tmp)
            j_total, j_fail = js_runs(node, target, n)
            j_wall, j_wall_fail = js_process_runs(node, target, n)
        finally:
            for p in reversed(procs):
                p.stop()
        left_out = "left out (--no-udp-blocked)"
        blocked = left_out if args.no_udp_blocked else udp_blocked_runs(min(n, 5), tmp)
        rejected = left_out if args.no_udp_blocked else udp_blocked_runs(min(n, 5), tmp, UDP_REJECTED)
    print(f"WebRTC upgrade through a js relay to a js Node listener, {n} dials each, medians")
    print(f"  dial start → WebRTC up   p2pdiag {med(p_total)} ({p_fail} failed)   js-libp2p {med(j_total)} "
          f"({j_fail} failed){ratio(p_total, j_total)}")
    print(f"  whole process, wall      p2pdiag {med(p_wall)} (`p2pdiag dial … --json`)   js-libp2p {med(j_wall)} "
          f"({j_wall_fail} failed; one dialer.mjs process per dial){ratio(p_wall, j_wall)}")
    print(f"  load average (1, 5, 15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  p2pdiag: relayed connection → first WebRTC stream open {med(p_stream)}")
    if isinstance(blocked, str):
        print(f"  UDP blocked: {blocked}")
    else:
        print(f"  UDP blocked, p2pdiag: offer → verdict {med(blocked)} over {len(blocked)} runs")
    if isinstance(rejected, list):
        print(f"  UDP rejected, p2pdiag: offer → verdict {med(rejected)} over {len(rejected)} runs")


if __name__ == "__main__":
    main()
