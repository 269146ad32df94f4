"""Test-only runner: a reconnect loop seen by `p2pdiag listen`, with real peers, and a summary line.

    python tests/support/reconnect_loop.py --relay js --rounds 4 --trace listen.jsonl

A relay (js-libp2p or py-libp2p), `p2pdiag listen --json` as a user runs it, and the js-libp2p
dialer in its loop mode (interop/js/dialer.mjs --loop N): one node that dials the listener's
/webrtc address through the relay, and when the upgrade fails hangs up and dials again. Run it
inside a network namespace that drops UDP (tests/support/webrtc.py NETNS["udp-blocked"]) and every
upgrade genuinely fails.

stdout: one JSON line per round of the dialer, then {"done": true, "verdict": <listen's --json>,
"listen_stderr": <what listen showed live>, ...}.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # p2pdiag itself, installed or not
from scenario import JS_DIR, NODE, ROOT, start_relay

from support import Proc, _ready_json

LISTEN_READY_S = 30.0
SETTLE_S = 15.0  # after the dialer exits: its last close reaching the listener's trace
STOP_S = 20.0


def listener_addrs(proc: Proc, relay_addr: str) -> list[str]:
    """The addresses `p2pdiag listen --json` prints on stderr (stdout is kept for the document)."""
    deadline = time.monotonic() + LISTEN_READY_S
    while time.monotonic() < deadline:
        addrs = [line.strip() for line in proc.stderr if line.strip().startswith(relay_addr)]
        if len(addrs) >= 2:
            return addrs
        if proc.popen.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"p2pdiag listen gave no addresses in {LISTEN_READY_S:g} s: {''.join(proc.stderr)[-3000:]}")


def closed_count(trace: Path) -> int:
    return sum('"circuit.closed"' in line for line in trace.read_text().splitlines()) if trace.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay", choices=["js", "py"], default="js")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--interval-ms", type=int, default=500, help="the dialer's wait after each hang-up")
    parser.add_argument("--relay-duration-ms", type=int, help="js relay only: its circuit duration limit")
    parser.add_argument("--trace", required=True)
    parser.add_argument("--listen-arg", action="append", default=[], help="one more argument for p2pdiag listen")
    args = parser.parse_args()
    trace = Path(args.trace)

    if args.relay_duration_ms is not None:
        relay_proc = Proc([str(NODE), str(JS_DIR / "relay.mjs"), "--no-ws", "--duration-ms",
                           str(args.relay_duration_ms)], "js relay")
        relay_addr = _ready_json(relay_proc)["addrs"][0]
    else:
        relay_proc, relay_addr, _ = start_relay(args.relay)
    listen = Proc([sys.executable, "-m", "p2pdiag", "listen", "--relay", relay_addr, "--json", "--trace", str(trace),
                   *args.listen_arg], "p2pdiag listen")
    try:
        target = next(a for a in listener_addrs(listen, relay_addr) if "/webrtc/" in a)
        per_round_s = 15
        dialer = subprocess.run([str(NODE), str(JS_DIR / "dialer.mjs"), "--target", target, "--loop",
                                 str(args.rounds), "--interval-ms", str(args.interval_ms), "--timeout-ms", "12000",
                                 "--quiet"], capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                                timeout=30 + per_round_s * args.rounds, check=False)
        rows = [json.loads(line) for line in dialer.stdout.splitlines() if line.startswith("{")]
        for row in rows:
            print(json.dumps(row), flush=True)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and closed_count(trace) < len(rows):
            time.sleep(0.1)
        listen.signal(signal.SIGINT)
        listen.wait(STOP_S)
        verdict = json.loads("".join(listen.stdout))
    finally:
        listen.stop()
        relay_proc.stop()
    print(json.dumps({"done": True, "rounds": len(rows), "dialer_exit": dialer.returncode,
                      "listen_exit": listen.popen.returncode, "listen_stderr": "".join(listen.stderr),
                      "verdict": verdict}), flush=True)


if __name__ == "__main__":
    main()
