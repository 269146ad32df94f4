"""Re-record the reconnect-loop traces of `p2pdiag listen` from real runs (needs root: unshare -n, nft).

    python tests/record/reconnect.py        # rewrites tests/traces/reconnect/*.jsonl

Each runs tests/support/reconnect_loop.py (a js-libp2p relay, `p2pdiag listen`, the js-libp2p dialer in
its loop mode) in a network namespace that drops UDP, so every upgrade really fails.
tests/interop/test_reconnect_loop.py checks the verdict `p2pdiag analyze` gives for each.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TRACES = TESTS / "traces" / "reconnect"
RUNNER = TESTS / "support" / "reconnect_loop.py"
sys.path[:0] = [str(TESTS), str(TESTS.parent)]  # tests (for support), and p2pdiag itself
from support.webrtc import NETNS

# name: runner arguments
CASES: dict[str, list[str]] = {
    "listen-js-loop-udp-blocked": ["--relay", "js", "--rounds", "4"],
    "listen-js-one-retry-udp-blocked": ["--relay", "js", "--rounds", "2"],
    # the js relay cuts every circuit at 3 s, before the dialer's 6 s upgrade timeout: each round is a relay cut
    "listen-js-loop-relay-cut": ["--relay", "js", "--relay-duration-ms", "3000", "--rounds", "3"],
}


def record(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "t.jsonl"
        argv = [sys.executable, str(RUNNER), *CASES[name], "--trace", str(trace)]
        argv = ["unshare", "-n", "sh", "-c", f"{NETNS['udp-blocked']} && exec {shlex.join(argv)}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
                                check=False)
        if result.returncode != 0 or not trace.exists():
            raise SystemExit(f"{name}: runner failed (exit {result.returncode}): {result.stderr[-2000:]}")
        shutil.copy(trace, TRACES / f"{name}.jsonl")
    print(f"recorded {name}: {result.stdout.splitlines()[-1][:200]}")


if __name__ == "__main__":
    for case in sys.argv[1:] or CASES:
        record(case)
