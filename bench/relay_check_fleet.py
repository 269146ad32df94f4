"""relay-check on a fleet: checking 20 relays at once must take less than twice checking one.

    python bench/relay_check_fleet.py [N] [--js] [--rtt-ms MS]

Starts N relays on 127.0.0.1 (py-libp2p by default, js-libp2p 3.x with --js; each allows 1000
reservations, since py and js relays keep the slot of every reservation until its TTL), then runs
`p2pdiag relay-check` on one of them and on all N, three times each, and prints the medians of the
wall time (process start to exit) and of the check itself (in the trace: from the first phase to
the last relay's end), the CPU time of the relay-check process, and the ratios.

Two networks: plain loopback, where nothing waits on the network and the check is bound by CPU
(py-libp2p's Noise and yamux in one process, beside N relay processes, on this machine's cores);
and relays `--rtt-ms` away (default 40), through a TCP proxy on 127.0.0.1 that holds every chunk
for half the RTT each way, as relays on the internet are. Reached through the proxy, a relay's
reservation addresses do not include the proxy's: that warning is expected here.
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
from support import JS_DIR, Proc, _ready_json  # noqa: E402

RUNS = 3
CLI = [sys.executable, "-m", "p2pdiag.relaycheck_cli", "relay-check"]  # the command even before cli.py registers it


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


def check(addrs: list[str]) -> tuple[float, float, str, float]:
    """(wall seconds, seconds inside the trace, verdict headline, CPU seconds of the relay-check process)."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "t.jsonl"
        cpu = _children_cpu()
        began = time.perf_counter()
        result = subprocess.run([*CLI, *addrs, "--json", "--trace", str(trace)], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
        wall = time.perf_counter() - began
        cpu = _children_cpu() - cpu
        events = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    first = min(e["t_s"] for e in events if e["type"] == "relaycheck.phase_started")
    last = max(e["t_s"] for e in events if e["type"] == "relaycheck.relay_finished")
    return wall, last - first, json.loads(result.stdout)["headline"], cpu


def compare(name: str, addrs: list[str]) -> float:
    one = [check(addrs[:1]) for _ in range(RUNS)]
    fleet = [check(addrs) for _ in range(RUNS)]
    wall1, in1 = statistics.median(r[0] for r in one), statistics.median(r[1] for r in one)
    walln, inn = statistics.median(r[0] for r in fleet), statistics.median(r[1] for r in fleet)
    cpu1, cpun = statistics.median(r[3] for r in one), statistics.median(r[3] for r in fleet)
    print(name)
    print(f"  1 relay:   {wall1:6.2f} s wall, {in1:6.2f} s checking, {cpu1:5.2f} s CPU   ({one[0][2]})")
    print(f"  {len(addrs)} relays: {walln:6.2f} s wall, {inn:6.2f} s checking, {cpun:5.2f} s CPU   ({fleet[0][2]})")
    print(f"  ratio:     {walln / wall1:6.2f}x wall, {inn / in1:6.2f}x checking", flush=True)
    return walln / wall1


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 20
    js = "--js" in sys.argv
    rtt_ms = float(sys.argv[sys.argv.index("--rtt-ms") + 1]) if "--rtt-ms" in sys.argv else 40.0
    relays = start_relays(n, js)
    kind = "js-libp2p" if js else "py-libp2p"
    try:
        addrs = [a for _, a in relays]
        print(f"relay-check, {n} {kind} relays, medians of {RUNS} runs (target: 20 relays under 2x one); "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        compare("on loopback (bound by CPU: nothing waits on the network)", addrs)
        ratio = compare(f"{rtt_ms:g} ms away (a delaying proxy on 127.0.0.1)", DelayProxies(addrs, rtt_ms / 1000).addrs)
    finally:
        for proc, _ in relays:
            proc.stop()
    sys.exit(0 if ratio < 2 else 1)


if __name__ == "__main__":
    main()
