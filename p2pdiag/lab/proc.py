"""The lab's child processes: stopping them, reading their logs, and waiting on their output lines.

coturn and the delay lines use `stop` and `log_tail`, `Lab.down` uses `wait_or_kill`; the scenario
runner's relays and listeners are LineChild, and so is tests/support.py's Proc (the tests' peers),
so they all wait and stop the same way.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

STOP_GRACE_S = 5.0  # after SIGTERM, before SIGKILL


def stop(proc: subprocess.Popen[Any] | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; nothing if it has already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    wait_or_kill(proc, timeout_s)


def wait_or_kill(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for a process already sent SIGTERM, then SIGKILL it.

    No second SIGTERM: a p2pdiag run takes a second signal as "stop now" (exit 130, no cleanup).
    """
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def log_tail(path: Path, chars: int, missing: str = "") -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return missing


class LineChild:
    """Owns `popen`; its stdout lines are kept in order (`stdout`) and queued for `next_line`."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.pump(popen.stdout, self.stdout, enqueue=True)

    def pump(self, stream: IO[str] | None, sink: list[str], enqueue: bool = False) -> None:
        """Read `stream` to its end in a daemon thread, appending each line to `sink`."""

        def run() -> None:
            assert stream is not None
            for line in stream:
                sink.append(line)
                if enqueue:
                    self.lines.put(line)

        threading.Thread(target=run, daemon=True).start()

    def next_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The next stdout line `predicate` accepts, or None when `timeout` passes or the process ended first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    return None
                continue
            if predicate(line):
                return line
        return None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE_S; close the pipes."""
        stop(self.popen, STOP_GRACE_S)
        for s in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
