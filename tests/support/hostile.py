"""Running p2pdiag against a hostile peer and measuring what it cost: wall time, peak RSS, output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from support import ROOT

RSS_LIMIT_BYTES = 200 * 1024 * 1024
# Start-up (imports) and interpreter shutdown are outside --timeout; on a loaded 2-core machine they
# took up to 30 s between them when other work loaded it. This only catches a hang; the bound that
# matters is on the trace.
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


# The child's peak RSS as os.wait4 reports it starts at its parent's RSS when it was spawned (Linux
# carries the parent's high-water mark through fork and exec), and pytest grows to hundreds of MB in
# a long run. So p2pdiag is started by a fresh, small Python that reports its child's ru_maxrss: what
# is measured is p2pdiag's own peak, plus at most that small launcher's ~10 MB.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-m", "p2pdiag", *sys.argv[2:]])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss * 1024))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(*args: str, trace: Path | None = None, guard_s: float = HANG_GUARD_S) -> Measured:
    """`python -m p2pdiag ARGS` with its own peak RSS, from a launcher of its own (see _LAUNCHER)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, rss.name, *args,
                                 *(["--trace", str(trace)] if trace else [])],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        try:
            proc.wait(guard_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"p2pdiag {' '.join(args)[:200]} still running after {guard_s} s: killed") from None
        wall = time.monotonic() - began
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        peak = rss.read().strip()
    assert peak, f"the launcher reported no peak RSS (exit {proc.returncode}); stderr: {stderr[-1500:]}"
    events = []
    if trace is not None and trace.exists():
        events = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    return Measured(proc.returncode, stdout, stderr, wall, int(peak), events)
