"""Re-record the diagnosis table's traces from real runs (py-libp2p and js-libp2p relays, p2pdiag listen).

    python tests/record/relay.py        # rewrites tests/traces/relay/*.jsonl

Each trace is a real run; tests/unit/test_diagnosis_table.py checks the verdict each one gives.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

TRACES = ROOT / "tests" / "traces" / "relay"
PEER = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
OTHER = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"


def p2pdiag(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True, timeout=120,
                   cwd=ROOT, stdin=subprocess.DEVNULL, check=False)


def py_relay(*args: str) -> tuple[Proc, str]:
    proc = Proc([sys.executable, "-m", "p2pdiag.peers.pyrelay", *args], "py relay")
    ready = _ready_json(proc)
    return proc, ready["addrs"][0]


def listener(relay: str, trace: Path | None = None) -> tuple[Proc, list[str]]:
    args = [sys.executable, "-m", "p2pdiag", "listen", "--relay", relay]
    if trace:
        args += ["--trace", str(trace)]
    proc = Proc(args, "p2pdiag listen")
    proc.wait_line(lambda s: s.startswith("Listening as "))
    return proc, [proc.wait_line(lambda s: s.strip().startswith("/")).strip() for _ in range(2)]


def main() -> None:
    procs: list[Proc] = []
    try:
        relay_proc, relay = py_relay()
        procs.append(relay_proc)
        lst, addrs = listener(relay, TRACES / "listen-py-relay.jsonl")
        procs.append(lst)
        p2pdiag("dial", addrs[0], "--trace", str(TRACES / "dial-py-relay-ok.jsonl"))
        lst.signal(signal.SIGINT)
        lst.wait(20)
        p2pdiag("dial", PEER, "--relay", relay, "--trace", str(TRACES / "dial-no-reservation.jsonl"))
        wrong = relay.rsplit("/", 1)[0] + "/" + OTHER
        p2pdiag("dial", PEER, "--relay", wrong, "--trace", str(TRACES / "dial-wrong-relay-id.jsonl"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p2pdiag("dial", PEER, "--relay", f"/ip4/127.0.0.1/tcp/{port}/p2p/{OTHER}", "--trace",
                str(TRACES / "dial-relay-refused.jsonl"))
        with socket.socket() as silent:  # accepts TCP, never speaks: the relay-connect timeout
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            port = silent.getsockname()[1]
            p2pdiag("dial", PEER, "--relay", f"/ip4/127.0.0.1/tcp/{port}/p2p/{OTHER}", "--step-timeout",
                    "relay-connect=1", "--trace", str(TRACES / "dial-relay-silent.jsonl"))
            # listen has no time to wait out relay-connect (10 s): its --timeout ends the run first
            p2pdiag("listen", "--relay", f"/ip4/127.0.0.1/tcp/{port}/p2p/{OTHER}", "--timeout", "5", "--trace",
                    str(TRACES / "listen-relay-silent.jsonl"))

        dur_proc, dur_relay = py_relay("--duration-s", "3")
        procs.append(dur_proc)
        lst, addrs = listener(dur_relay)
        procs.append(lst)
        p2pdiag("dial", addrs[0], "--hold", "10", "--ping-interval", "0.5", "--trace",
                str(TRACES / "dial-py-duration-cut.jsonl"))
        data_proc, data_relay = py_relay("--data-bytes", "12000")
        procs.append(data_proc)
        lst, addrs = listener(data_relay)
        procs.append(lst)
        p2pdiag("dial", addrs[0], "--hold", "20", "--ping-interval", "0.05", "--trace",
                str(TRACES / "dial-py-data-cut.jsonl"))

        node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                              check=True).stdout.strip()
        js_relay = Proc([node, str(JS_DIR / "relay.mjs"), "--duration-ms", "4000"], "js relay")
        procs.append(js_relay)
        js_addr = _ready_json(js_relay)["addrs"][0]
        js_lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", js_addr], "js listener")
        procs.append(js_lst)
        target = _ready_json(js_lst)["addrs"][0]
        p2pdiag("dial", target, "--hold", "12", "--ping-interval", "0.5", "--trace",
                str(TRACES / "dial-js-relay-duration-cut.jsonl"))

        partial = TRACES / "dial-interrupted.jsonl"
        proc = Proc([sys.executable, "-m", "p2pdiag", "dial", target, "--hold", "60", "--trace", str(partial)],
                    "p2pdiag dial")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "hold.started" not in (partial.read_text() if partial.exists() else ""):
            time.sleep(0.1)
        proc.signal(signal.SIGINT)
        proc.wait(20)
        procs.append(proc)
    finally:
        for p in reversed(procs):
            p.stop()
    for f in sorted(TRACES.glob("*.jsonl")):
        print(f.name, sum(1 for _ in f.open()) - 1, "events", json.loads(f.open().readline())["command"])


if __name__ == "__main__":
    main()
