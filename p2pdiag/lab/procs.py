"""Ending the lab's long-running helpers (coturn, delay lines) and reading their logs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def stop(proc: subprocess.Popen[Any] | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; nothing if it has already ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
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
