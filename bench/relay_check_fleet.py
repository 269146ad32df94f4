"""relay-check on a fleet: checking 20 relays at once must take less than twice checking one.

    python bench/relay_check_fleet.py [N ...] [--js] [--rtt-ms MS] [--no-delay]

Starts max(N) relays on 127.0.0.1 (py-libp2p by default, js-libp2p 3.x with --js; each allows
1000 reservations, since py and js relays keep the slot of every reservation until its TTL), then
runs `p2pdiag relay-check` on one of them and on the first N (default: 5 and 20), three times
each, and prints the medians of the wall time (process start to exit), of the check itself (in
the trace: from the first phase to the last relay's end), of the CPU time of the relay-check
process and of the relays' processes during the run, and the ratios to one relay.

How to read it. The relays run on the same cores as relay-check (two on the machine this was
written for), and so do whatever else the machine is doing: the load average is printed first.
On plain loopback nothing waits on the network and the check is bound by CPU: p2pdiag's side of
every relay (both identities' connections to the relay, both ends of the loop circuit, raw bytes
on it) runs in its one process, and the relays' share runs beside it. With relays `--rtt-ms` away (default 40, through
a TCP proxy on 127.0.0.1 that holds every chunk for half the RTT each way, as relays on the internet
are) most of a check is waiting, and the ratio is what a fleet check costs in practice. Reached
through the proxy, a relay's reservation addresses do not include the proxy's: that warning is
expected here. The exit status is 0 when 20 (the largest N) relays took under twice one, on loopback.

Figures (2 CPUs shared with other jobs; medians of 3; 1 / 5 / 20 relays, wall):
    load 1.2  loopback 1.99 / 2.57 / 3.86 s (1.94x)   40 ms 3.62 / 3.59 / 4.37 s (1.21x)
    load 2.6  loopback 2.07 / 2.30 / 3.37 s (1.62x)   40 ms 3.32 / 3.59 / 4.27 s (1.29x)
and before the loop ran raw on the circuit (Noise + yamux over it), load 2.1 to 3.9:
    loopback 2.18-2.36 / 2.48-3.16 / 4.88-7.06 s (2.08x to 3.24x)   40 ms 4.08-4.35 / 4.25-4.65 / 5.11-5.88 s
docs/relay-check.md ("Speed") says where the CPU goes.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

RUNS = 3
CLI = [sys.executable, "-m", "p2pdiag", "relay-check"]


def start_relays(n: int, js: bool) -> list[tuple[Proc, str]]:
    if js:
        node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                              check=True).stdout.strip().splitlines()[-1]
        args = [node, str(JS_DIR / "relay.mjs"), "--no-ws", "--max-reservations", "1000"]
    else:
        args = [sys.executable, "-m", "p2pdiag.peers.pyrelay", "--max-reservations", "1000"]

    def one(i: int) -> tuple[Proc, str]:
        proc = Proc(args, f"relay {i}")
        return proc, _ready_json(proc)["addrs"][0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(n)))


class DelayProxies:
    """One TCP proxy per relay on 127.0.0.1, each direction delayed by half the RTT."""

    def __init__(self, addrs: list[str], rtt_s: float) -> None:
        self.delay = rtt_s / 2
        self.loop = asyncio.new_event_loop()
        self.addrs: list[str] = []
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        for addr in addrs:
            port = int(addr.split("/tcp/")[1].split("/")[0])
            peer = addr.rsplit("/p2p/", 1)[1]
            fut = asyncio.run_coroutine_threadsafe(self._serve(port), self.loop)
            self.addrs.append(f"/ip4/127.0.0.1/tcp/{fut.result(10)}/p2p/{peer}")

    async def _serve(self, target_port: int) -> int:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", target_port)
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                self.loop.call_later(self.delay, writer.write, chunk)
        except OSError:
            pass
        self.loop.call_later(self.delay, writer.close)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _procs_cpu(pids: list[int]) -> float:
    """CPU seconds the relays' processes have used so far (utime + stime from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def check(addrs: list[str], relay_pids: list[int]) -> tuple[float, float, str, float, float]:
    """(wall seconds, seconds inside the trace, verdict headline, CPU seconds of the relay-check process,
    CPU seconds of the relays' processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "t.jsonl"
        cpu, relays_cpu = _children_cpu(), _procs_cpu(relay_pids)
        began = time.perf_counter()
        result = subprocess.run([*CLI, *addrs, "--json", "--trace", str(trace)], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, cwd=ROOT, timeout=300, check=False)
        wall = time.perf_counter() - began
        cpu, relays_cpu = _children_cpu() - cpu, _procs_cpu(relay_pids) - relays_cpu
        events = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    first = min(e["t_s"] for e in events if e["type"] == "relaycheck.phase_started")
    last = max(e["t_s"] for e in events if e["type"] == "relaycheck.relay_finished")
    return wall, last - first, json.loads(result.stdout)["headline"], cpu, relays_cpu


def compare(name: str, addrs: list[str], sizes: list[int], relay_pids: list[int]) -> dict[int, float]:
    """Medians for 1 relay and for each fleet size; returns the wall ratio of each size to one relay."""
    print(name)
    base = None
    ratios = {}
    for n in [1, *sizes]:
        runs = [check(addrs[:n], relay_pids) for _ in range(RUNS)]
        wall, inside, cpu, relays = (statistics.median(r[i] for r in runs) for i in (0, 1, 3, 4))
        if base is None:
            base = (wall, inside)
        ratios[n] = wall / base[0]
        print(f"  {n:2d} relay{'s' if n > 1 else ' '}: {wall:6.2f} s wall, {inside:6.2f} s checking, "
              f"{cpu:5.2f} s CPU, relays {relays:5.2f} s CPU, ratio {wall / base[0]:4.2f}x wall, "
              f"{inside / base[1]:5.2f}x checking   ({runs[0][2]})", flush=True)
    return ratios


def main() -> None:
    sizes = sorted({int(a) for a in sys.argv[1:] if a.isdigit()} - {1}) or [5, 20]
    js = "--js" in sys.argv
    rtt_ms = float(sys.argv[sys.argv.index("--rtt-ms") + 1]) if "--rtt-ms" in sys.argv else 40.0
    relays = start_relays(max(sizes), js)
    pids = [proc.popen.pid for proc, _ in relays]
    kind = "js-libp2p" if js else "py-libp2p"
    try:
        addrs = [a for _, a in relays]
        print(f"relay-check on {kind} relays, medians of {RUNS} runs (target: 20 relays under 2x one); "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        ratios = compare("on loopback (bound by CPU: nothing waits on the network)", addrs, sizes, pids)
        if "--no-delay" not in sys.argv:
            compare(f"{rtt_ms:g} ms away (a delaying proxy on 127.0.0.1)", DelayProxies(addrs, rtt_ms / 1000).addrs,
                    sizes, pids)
    finally:
        for proc, _ in relays:
            proc.stop()
    sys.exit(0 if ratios[max(sizes)] < 2 else 1)


if __name__ == "__main__":
    main()
