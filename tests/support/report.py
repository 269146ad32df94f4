"""Inputs for `p2pdiag report`'s tests: a recorded trace moved in wall-clock time beside a recorded log."""

from __future__ import annotations

import datetime
import json
from pathlib import Path


def recorded_with(trace: Path, log: Path, out_dir: Path, after_s: float) -> Path:
    """TRACE as if its run had begun AFTER_S seconds after LOG's first line: only its header's
    started_at is moved, so the report aligns the two by wall clock as it would a real pair."""
    first = next(line.split()[0] for line in log.read_text().splitlines() if line[:4].isdigit())
    when = datetime.datetime.fromisoformat(first) + datetime.timedelta(seconds=after_s)
    lines = trace.read_text().splitlines()
    header = json.loads(lines[0])
    header["started_at"] = when.isoformat(timespec="milliseconds")
    out = out_dir / trace.name
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return out
