"""Re-record the WebRTC upgrade traces from real runs (js-libp2p 3.x in Node, p2pdiag, misbehaving peers).

    python tests/record/webrtc.py        # rewrites tests/traces/webrtc/*.jsonl (needs root for two)

tests/unit/test_upgrade_diagnosis.py checks the story each one gives. The two `udp`/`loopback`
cases run in a network namespace of their own (unshare -n, nft).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TRACES = TESTS / "traces" / "webrtc"
SCENARIO = TESTS / "support" / "scenario.py"
sys.path.insert(0, str(TESTS))
from support.webrtc import NETNS

# name: (scenario arguments, network namespace, which trace to keep)
CASES: dict[str, tuple[list[str], str | None, str]] = {
    "initiator-js-ok": (["initiator", "--relay", "js", "--remote", "js"], None, "trace"),
    "responder-js-ok": (["js-dialer", "--relay", "js"], None, "trace"),
    "initiator-p2pdiag-ok": (["initiator", "--relay", "py", "--remote", "p2pdiag"], None, "trace"),
    "responder-p2pdiag-ok": (["initiator", "--relay", "py", "--remote", "p2pdiag"], None, "remote"),
    "initiator-js-no-signaling": (["initiator", "--relay", "js", "--remote", "js-no-webrtc"], None, "trace"),
    "initiator-signaling-reset": (["initiator", "--relay", "py", "--remote", "p2pdiag:reset-after-offer"], None,
                                  "trace"),
    "initiator-garbage-answer": (["initiator", "--relay", "py", "--remote", "p2pdiag:garbage-answer"], None,
                                 "trace"),
    "initiator-offer-as-answer": (["initiator", "--relay", "py", "--remote", "p2pdiag:offer-as-answer"], None,
                                  "trace"),
    "initiator-silent-listener": (["initiator", "--relay", "py", "--remote", "p2pdiag:silent",
                                   "--signaling-timeout", "2"], None, "trace"),
    "initiator-wrong-fingerprint": (["initiator", "--relay", "py", "--remote", "p2pdiag:wrong-fingerprint"], None,
                                    "trace"),
    "initiator-no-local-candidates": (["initiator", "--relay", "js", "--remote", "js", "--policy", "relay"], None,
                                      "trace"),
    "initiator-loopback-only": (["initiator", "--relay", "js", "--remote", "js"], "loopback", "trace"),
    # UDP dropped where the sender cannot see it: every check leaves and nothing answers (a drop on
    # output is refused at once, EPERM, and ends ICE there: tests/interop/test_webrtc_live.py)
    "initiator-udp-blocked": (["initiator", "--relay", "js", "--remote", "js"], "udp-dropped-in", "trace"),
    "responder-dialer-abandoned": (["js-dialer", "--relay", "js", "--responder-ice-timeout", "8", "--wait-for",
                                    "webrtc.upgrade_failed"], "udp-dropped-in", "trace"),
}


def record(name: str) -> None:
    args, netns, keep = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        trace, remote = Path(tmp) / "t.jsonl", Path(tmp) / "r.jsonl"
        argv = [sys.executable, str(SCENARIO), *args, "--trace", str(trace)]
        if args[0] == "initiator":
            argv += ["--remote-trace", str(remote)]
        if netns:
            argv = ["unshare", "-n", "sh", "-c", f"{NETNS[netns]} && exec {shlex.join(argv)}"]
        subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
        shutil.copy(trace if keep == "trace" else remote, TRACES / f"{name}.jsonl")
    print(f"recorded {name}")


if __name__ == "__main__":
    for case in sys.argv[1:] or CASES:
        record(case)
