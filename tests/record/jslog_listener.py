"""Re-record the listening node's js-libp2p debug logs `p2pdiag analyze` reads (js-libp2p 3.x in Node).

    python tests/record/jslog_listener.py      # writes tests/traces/jslog/listen-*.log (not listen-reservation.log)

Each log is the real stderr of interop/js/listener.mjs under DEBUG="libp2p:*,*:trace", behind a real
js relay on loopback (the listener's own JSON lines among js-libp2p's, as an app's output would be):

- listen-upgraded.log: the listener reserves, a js dialer reaches it through the relay and upgrades
  to WebRTC, the listener is stopped: a reservation held to the end, one inbound relayed connection;
  dial-to-listen-upgraded.log is that dialer's log (the same connection from the other side: the
  pair `analyze` puts on one timeline);
- listen-relay-restarted.log: the relay is stopped 3 s after the reservation and started again 2 s
  later with the same key on the same port; the listener is left running 15 s more. js-libp2p 3.x
  removes the reservation when the relay's connection closes and, for a relay given as a listen
  address, never reserves again (js-libp2p #3601): the log ends with the node listening through no
  relay.

- listen-p2pdiag-beside-js-dialer.jsonl and dial-to-p2pdiag-listen.log: `p2pdiag listen --trace`
  behind a js relay, and the log of a js dialer's relayed dial to it (two pings): one connection,
  a trace on one side and a js log on the other.

tests/unit/test_jslog_table.py checks the verdict each one gives; tests/unit/test_several.py puts
the pairs on one timeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

LOGS = ROOT / "tests" / "traces" / "jslog"
DEBUG = {"DEBUG": "libp2p:*,*:trace"}


def keep(proc: Proc, name: str) -> None:
    proc.signal(signal.SIGTERM)
    proc.wait(10)
    time.sleep(0.3)  # the stderr pump drains the pipe
    (LOGS / name).write_text("".join(proc.stderr))
    print(name, len(proc.stderr), "lines")


def upgraded(node: str, procs: list[Proc]) -> None:
    relay = Proc([node, str(JS_DIR / "relay.mjs")], "js relay")
    procs.append(relay)
    relay_addr = _ready_json(relay)["addrs"][0]
    for _ in range(5):  # js<->js WebRTC on loopback fails now and then (interop/js/README.md)
        lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr], "js listener", env=DEBUG)
        procs.append(lst)
        webrtc = next(a for a in _ready_json(lst)["addrs"] if "/webrtc/" in a and "/ws/" not in a)
        dial = subprocess.run([node, str(JS_DIR / "dialer.mjs"), "--quiet", "--target", webrtc], capture_output=True,
                              text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL, check=False,
                              env={**os.environ, **DEBUG})
        time.sleep(0.5)
        if dial.returncode == 0:
            keep(lst, "listen-upgraded.log")
            (LOGS / "dial-to-listen-upgraded.log").write_text(dial.stderr)  # the same connection, the other side
            print("dial-to-listen-upgraded.log", len(dial.stderr.splitlines()), "lines")
            return
        lst.stop()
    raise SystemExit("the WebRTC upgrade failed five times")


def relay_restarted(node: str, procs: list[Proc], key: Path) -> None:
    relay = Proc([node, str(JS_DIR / "relay.mjs"), "--key", str(key)], "js relay")
    procs.append(relay)
    relay_addr = _ready_json(relay)["addrs"][0]
    port = relay_addr.split("/tcp/", 1)[1].split("/", 1)[0]
    lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_addr, "--no-webrtc"], "js listener", env=DEBUG)
    procs.append(lst)
    _ready_json(lst)
    time.sleep(3)
    relay.signal(signal.SIGTERM)
    relay.wait(10)
    time.sleep(2)
    again = Proc([node, str(JS_DIR / "relay.mjs"), "--key", str(key), "--tcp-port", port], "js relay again")
    procs.append(again)
    assert _ready_json(again)["addrs"][0] == relay_addr, "the relay came back elsewhere"
    time.sleep(15)
    keep(lst, "listen-relay-restarted.log")


def beside_p2pdiag_listen(node: str, procs: list[Proc]) -> None:
    """`p2pdiag listen --trace` behind a js relay, and a js dialer's log of its relayed dial to it: the
    trace and the log of one connection, from its two sides."""
    relay = Proc([node, str(JS_DIR / "relay.mjs"), "--no-ws"], "js relay")
    procs.append(relay)
    relay_addr = _ready_json(relay)["addrs"][0]
    trace = LOGS / "listen-p2pdiag-beside-js-dialer.jsonl"
    listen = Proc([sys.executable, "-m", "p2pdiag", "listen", "--relay", relay_addr, "--json", "--trace", str(trace)],
                  "p2pdiag listen")
    procs.append(listen)
    deadline = time.monotonic() + 30  # `listen --json` prints its addresses on stderr
    while not (addrs := [a.strip() for a in listen.stderr if a.strip().startswith(relay_addr) and "/webrtc/" not in a]):
        if time.monotonic() > deadline:
            raise SystemExit(f"p2pdiag listen gave no address: {''.join(listen.stderr)[-2000:]}")
        time.sleep(0.1)
    target = addrs[0]
    dial = subprocess.run([node, str(JS_DIR / "dialer.mjs"), "--quiet", "--target", target, "--pings", "2"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL, check=False,
                          env={**os.environ, **DEBUG})
    time.sleep(1)
    listen.signal(signal.SIGINT)
    listen.wait(20)
    (LOGS / "dial-to-p2pdiag-listen.log").write_text(dial.stderr)
    print(trace.name, "and dial-to-p2pdiag-listen.log", len(dial.stderr.splitlines()), "lines; dialer exit",
          dial.returncode)


def main() -> None:
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()
    procs: list[Proc] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            upgraded(node, procs)
            relay_restarted(node, procs, Path(tmp) / "relay.key")
        beside_p2pdiag_listen(node, procs)
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
