"""Re-record js-libp2p 3.x logs of a WebRTC upgrade on a network that drops UDP (needs root).

    sudo python tests/record/jslog_udp.py    # writes tests/traces/jslog/{dial,listen}-webrtc-udp-blocked.log

A js relay, a js listener (with WebRTC) and a js dialer run in one network namespace made for the
purpose, `p2pdiag-rec-udp`, whose nftables output chain drops every UDP packet; TCP over its loopback
is untouched, so the relayed connection and the signaling over it work, and only ICE's UDP checks
are lost, as behind a firewall that drops UDP. The dialer dials the listener's /webrtc address under
DEBUG="libp2p:*,*:trace"; js-libp2p gives the upgrade up at its signaling timeout. Both sides' logs are
kept: the same failure from the two ends (tests/unit/test_several.py puts them on one timeline). The
namespace is deleted afterwards.
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
NS = "p2pdiag-rec-udp"
DEBUG = {"DEBUG": "libp2p:*,*:trace"}
DROP_UDP = "table inet p2pdiag_rec {\n chain out { type filter hook output priority 0; meta l4proto udp drop; }\n}\n"


def sh(*argv: str, input: str | None = None) -> None:
    subprocess.run(argv, input=input, text=True, check=True)


def main() -> None:
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    sh("ip", "netns", "add", NS)
    procs: list[Proc] = []
    try:
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", NS, "nft", "-f", "-", input=DROP_UDP)
        inside = ["ip", "netns", "exec", NS, node]
        relay = Proc([*inside, str(JS_DIR / "relay.mjs")], "js relay")
        procs.append(relay)
        relay_addr = _ready_json(relay)["addrs"][0]
        lst = Proc([*inside, str(JS_DIR / "listener.mjs"), "--relay", relay_addr], "js listener", env=DEBUG)
        procs.append(lst)
        webrtc = next(a for a in _ready_json(lst)["addrs"] if "/webrtc/" in a and "/ws/" not in a)
        dial = subprocess.run([*inside, str(JS_DIR / "dialer.mjs"), "--quiet", "--target", webrtc],
                              capture_output=True, text=True, timeout=90, cwd=ROOT, stdin=subprocess.DEVNULL,
                              check=False, env={**os.environ, **DEBUG})
        assert dial.returncode != 0, "the upgrade succeeded with UDP dropped: the rule did not hold"
        (LOGS / "dial-webrtc-udp-blocked.log").write_text(dial.stderr)
        time.sleep(1)
        lst.signal(signal.SIGTERM)
        lst.wait(10)
        time.sleep(0.3)  # the stderr pump drains the pipe
        (LOGS / "listen-webrtc-udp-blocked.log").write_text("".join(lst.stderr))
        print("dial-webrtc-udp-blocked.log", len(dial.stderr.splitlines()), "lines; listen-webrtc-udp-blocked.log",
              len(lst.stderr), "lines")
    finally:
        for p in reversed(procs):
            p.stop()
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


if __name__ == "__main__":
    main()
