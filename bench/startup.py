"""Startup time: `p2pdiag --help` and `p2pdiag analyze` beside `python -c pass` and `import libp2p`.

Prints medians of N runs. Usage: python bench/startup.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRACE = (
    '{"type":"p2pdiag.trace","schema_version":1,"p2pdiag_version":"0","command":"dial","options":{},'
    '"started_at":"x","libraries":{}}\n'
)


def median_s(args: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "t.jsonl"
        trace.write_text(TRACE)
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("p2pdiag --help", [sys.executable, "-m", "p2pdiag", "--help"]),
            ("p2pdiag analyze (empty trace)", [sys.executable, "-m", "p2pdiag", "analyze", str(trace)]),
            ("python -c 'import libp2p'", [sys.executable, "-c", "import libp2p"]),
        ]
        base = None
        print(f"median of {n} runs")
        for name, args in rows:
            t = median_s(args, n)
            base = base or t
            print(f"  {name:34s} {t * 1000:7.1f} ms  (+{(t - base) * 1000:6.1f} ms over python -c pass)")


if __name__ == "__main__":
    main()
