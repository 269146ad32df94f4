"""Re-record the js-libp2p debug logs `p2pdiag analyze` reads (js-libp2p 3.x in Node, no TTY).

    python tests/record/jslog.py        # rewrites tests/traces/jslog/*.log
    python tests/record/jslog.py dial-limited-stream-refused.log   # only the logs named

Each log is the real stderr of interop/js/dialer.mjs (run with `--quiet`, so only js-libp2p's own
lines are in it) under DEBUG="libp2p:*,*:trace" (the `-no-trace` ones under DEBUG="libp2p:*"; the
`-colour` one with DEBUG_COLORS=1, the form a terminal gets), dialing a real js relay and js
listener on loopback; listen-reservation.log is a js listener's stderr under DEBUG="libp2p:*" (its
own JSON log lines among js-libp2p's, as an app's output would be). tests/unit/test_jslog_table.py
checks the verdict each one gives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

LOGS = ROOT / "tests" / "traces" / "jslog"
DEBUG = "libp2p:*,*:trace"
NOBODY = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"  # a peer id with no reservation anywhere
APP_PROTOCOL = "/p2pdiag/app/1.0.0"
ONLY: set[str] = set()  # the logs named on the command line, or every one


def dial(node: str, name: str, target: str, *args: str, debug: str = DEBUG, colours: bool = False) -> bool:
    """Run the js dialer once against TARGET and keep its stderr (the debug log) as NAME; COLOURS gives
    the form a terminal gets (ANSI colours and +Nms diffs, no time). Logs not in ONLY (when given) are
    not recorded again."""
    if ONLY and name not in ONLY:
        return True
    env = {**os.environ, "DEBUG": debug}
    env.pop("DEBUG_COLORS", None)
    if colours:
        env["DEBUG_COLORS"] = "1"
    result = subprocess.run([node, str(JS_DIR / "dialer.mjs"), "--quiet", "--target", target, *args],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, check=False)
    (LOGS / name).write_text(result.stderr)
    print(name, len(result.stderr.splitlines()), "lines;", result.stdout.strip()[:200])
    return result.returncode == 0


def relay_and_listener(node: str, procs: list[Proc], *relay_args: str) -> str:
    """A js relay with RELAY_ARGS and a js listener (no WebRTC) behind it: the listener's circuit address."""
    relay = Proc([node, str(JS_DIR / "relay.mjs"), *relay_args], "js relay")
    procs.append(relay)
    relay_addr = _ready_json(relay)["addrs"][0]
    lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr, "--no-webrtc"], "js listener")
    procs.append(lst)
    return next(a for a in _ready_json(lst)["addrs"] if "/ws/" not in a)


def node22() -> str:
    """Node 22 (scripts/setup-js.sh installs it if missing)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


def start_relay(node: str, procs: list[Proc]) -> list[str]:
    """A js relay with its defaults (kept in PROCS to stop): its addresses."""
    relay = Proc([node, str(JS_DIR / "relay.mjs")], "js relay")
    procs.append(relay)
    return _ready_json(relay)["addrs"]


def main() -> None:
    node = node22()
    procs: list[Proc] = []
    try:
        relay_addr = start_relay(node, procs)[0]
        lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr], "js listener")
        procs.append(lst)
        addrs = _ready_json(lst)["addrs"]
        webrtc = next(a for a in addrs if "/webrtc/" in a and "/ws/" not in a)
        # js<->js WebRTC on loopback fails now and then (interop/js/README.md: the initiator drops the
        # remote candidate, "bad candidate received", and times out at 6 s): such an attempt is kept as
        # dial-webrtc-failed-attempt.log, and the dial is tried again for the upgraded one
        for _ in range(5):
            if dial(node, "dial-webrtc-upgraded.log", webrtc):
                break
            (LOGS / "dial-webrtc-upgraded.log").replace(LOGS / "dial-webrtc-failed-attempt.log")
        dial(node, "dial-no-reservation.log", f"{relay_addr}/p2p-circuit/p2p/{NOBODY}")
        dial(node, "dial-no-reservation-colour-no-trace.log", f"{relay_addr}/p2p-circuit/p2p/{NOBODY}",
             debug="libp2p:*", colours=True)

        plain = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr, "--no-webrtc"], "js listener")
        procs.append(plain)
        circuit = next(a for a in _ready_json(plain)["addrs"] if "/ws/" not in a)
        dial(node, "dial-no-webrtc-signaling.log", circuit.replace("/p2p-circuit/", "/p2p-circuit/webrtc/"))

        target = relay_and_listener(node, procs, "--duration-ms", "2000")
        dial(node, "dial-relay-duration-cut.log", target, "--pings", "5", "--ping-interval-ms", "800")
        dial(node, "dial-relay-duration-cut-no-trace.log", target, "--pings", "5", "--ping-interval-ms", "800",
             debug="libp2p:*")
        target = relay_and_listener(node, procs, "--data-bytes", "2048")
        dial(node, "dial-relay-data-cut.log", target, "--pings", "3", "--timeout-ms", "10000")

        # an app protocol the dialer handles with js-libp2p's defaults (not on limited connections), opened by
        # the listener over the relayed connection as soon as it comes: js-libp2p refuses the stream
        app = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr, "--no-webrtc", "--open", APP_PROTOCOL],
                   "js listener")
        procs.append(app)
        target = next(a for a in _ready_json(app)["addrs"] if "/ws/" not in a)
        dial(node, "dial-limited-stream-refused.log", target, "--handle", APP_PROTOCOL, "--pings", "3",
             "--ping-interval-ms", "500")

        # a listening node's log (reservation made, then stopped): analyze says it reads a dialer's log
        if ONLY and "listen-reservation.log" not in ONLY:
            return
        lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr, "--no-webrtc"], "js listener",
                   env={"DEBUG": "libp2p:*"})
        _ready_json(lst)
        time.sleep(0.5)
        lst.signal(signal.SIGTERM)
        lst.wait(10)
        time.sleep(0.2)  # the stderr pump drains the pipe
        (LOGS / "listen-reservation.log").write_text("".join(lst.stderr))
        print("listen-reservation.log", len(lst.stderr), "lines")
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    ONLY.update(sys.argv[1:])
    main()
