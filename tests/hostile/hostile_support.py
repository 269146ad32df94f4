"""Running p2pdiag against a hostile peer and measuring what it cost: wall time, peak RSS, output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from support import ROOT

RSS_LIMIT_BYTES = 200 * 1024 * 1024
# Start-up (imports) and interpreter shutdown are outside --timeout; on a loaded 2-core machine they
# took up to 30 s between them when other work loaded it. This only catches a hang; the bound that matters is on the trace.
HANG_GUARD_S = 60.0


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_bytes: int
    events: list[dict]

    def run_span_s(self) -> float:
        """From the first event the run recorded to its last: what --timeout bounds."""
        times = [e["t_s"] for e in self.events if "t_s" in e]
        return max(times) - min(times) if times else 0.0

    def describe(self) -> str:
        return (f"exit {self.returncode}, {self.wall_s:.1f} s, {self.peak_rss_bytes >> 20} MiB; "
                f"stdout: {self.stdout[-1500:]} stderr: {self.stderr[-1500:]}")


def run_measured(*args: str, trace: Path | None = None, guard_s: float = HANG_GUARD_S) -> Measured:
    """`python -m p2pdiag ARGS` with its own peak RSS (os.wait4 reports it for this child alone)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "p2pdiag", *args, *(["--trace", str(trace)] if trace else [])],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - began > guard_s:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                raise AssertionError(f"p2pdiag {' '.join(args)[:200]} still running after {guard_s} s: killed")
            time.sleep(0.05)
        wall = time.monotonic() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    events = []
    if trace is not None and trace.exists():
        events = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    return Measured(proc.returncode, stdout, stderr, wall, usage.ru_maxrss * 1024, events)
