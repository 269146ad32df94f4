"""How long `p2pdiag analyze` takes to read a long js-libp2p debug log, and with how much memory.

    python bench/jslog_read.py [LINES]      # LINES defaults to 200,000

The log is a recorded one (tests/traces/jslog/) repeated to LINES lines and written to a
temporary file, then read and diagnosed as `analyze` does. Prints the lines, the seconds and the
peak memory of reading 1/10 of it and all of it: the two peaks should be close (the file is
streamed; only the facts found are kept, at most evidence.jslog.MAX_FACTS).
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from p2pdiag.diagnosis.jslog import diagnose_jslog
from p2pdiag.evidence import jslog

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "traces" / "jslog" / "dial-relay-duration-cut.log"


def write(path: Path, lines: int) -> None:
    sample = SAMPLE.read_bytes().splitlines(keepends=True)
    with path.open("wb") as f:
        for i in range(lines):
            f.write(sample[i % len(sample)])


def measure(path: Path) -> tuple[float, int]:
    began = time.perf_counter()
    diagnose_jslog(jslog.load(path))
    elapsed = time.perf_counter() - began
    tracemalloc.start()
    diagnose_jslog(jslog.load(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak


def reference(path: Path) -> float:
    """The floor: read the same file line by line and split each line once, doing nothing else."""
    began = time.perf_counter()
    with path.open("rb") as f:
        for line in f:
            line.decode("utf-8", "replace").split(" ", 2)
    return time.perf_counter() - began


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"{'lines':>9}  {'size':>9}  {'analyze':>9}  {'peak':>10}  {'reference: read + split':>24}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (lines // 10, lines):
            path = Path(tmp) / f"{n}.log"
            write(path, n)
            elapsed, peak = measure(path)
            floor = reference(path)
            size = path.stat().st_size / 2**20
            print(f"{n:>9}  {size:5.1f} MiB  {elapsed:7.2f} s  {peak / 2**20:6.2f} MiB  {floor:22.2f} s")


if __name__ == "__main__":
    main()
