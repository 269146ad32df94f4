"""Time to verdict: wall time of `p2pdiag dial` (process start to exit) against a py-libp2p relay
and `p2pdiag listen`, and against a js-libp2p relay and Node listener; plus `p2pdiag demo`.

    python bench/time_to_verdict.py [N]       # medians of N runs (default 5)

Also prints the time to the relayed connection and to the first relayed ping, from the traces.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json


def dial_runs(target: str, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"wall": [], "secured": [], "ping": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            trace = Path(tmp) / f"{i}.jsonl"
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "p2pdiag", "dial", target, "--trace", str(trace)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=False)
            out["wall"].append(time.perf_counter() - began)
            events = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
            start = next(e["t_s"] for e in events if e["type"] == "relay.dial_started")
            out["secured"].append(next(e["t_s"] for e in events if e["type"] == "circuit.secured") - start)
            out["ping"].append(next(e["t_s"] for e in events if e["type"] == "ping.completed") - start)
    return out


def show(name: str, runs: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) * 1000 for k, v in runs.items()}
    print(f"  {name:38s} verdict {med['wall']:7.0f} ms   relay→relayed connection {med['secured']:6.0f} ms"
          f"   relay→first ping {med['ping']:6.0f} ms")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"median of {n} runs")
    procs: list[Proc] = []
    try:
        relay = Proc([sys.executable, "-m", "p2pdiag.peers.pyrelay"], "py relay")
        procs.append(relay)
        relay_addr = _ready_json(relay)["addrs"][0]
        listener = Proc([sys.executable, "-m", "p2pdiag", "listen", "--relay", relay_addr], "p2pdiag listen")
        procs.append(listener)
        target = listener.wait_line(lambda s: "/p2p-circuit/p2p/" in s).strip()
        show("py relay + p2pdiag listen", dial_runs(target, n))

        node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                              check=True).stdout.strip()
        js_relay = Proc([node, str(JS_DIR / "relay.mjs")], "js relay")
        procs.append(js_relay)
        js_addr = _ready_json(js_relay)["addrs"][0]
        js_listener = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", js_addr], "js listener")
        procs.append(js_listener)
        show("js relay + js Node listener", dial_runs(_ready_json(js_listener)["addrs"][0], n))
    finally:
        for p in reversed(procs):
            p.stop()
    demo = []
    for _ in range(n):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "p2pdiag", "demo"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=False)
        demo.append(time.perf_counter() - began)
    print(f"  {'p2pdiag demo (relay+peer+dial)':38s} verdict {statistics.median(demo) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
