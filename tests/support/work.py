"""The work a call does, counted rather than timed.

Speed is measured by the scripts in bench/, not asserted in tests: a wall-clock bound fails on a
loaded machine (a fuzz test's 0.25 s bound failed CI once at 0.35 s, on a call that passed when
repeated). What a test can assert without a clock is that the work grows with the input as it
should. `cost` counts the Python lines a call executes (every frame, through sys.settrace) and its
peak memory (tracemalloc); both are the same on a busy machine as on an idle one.

Work done inside C (a bytes copy, a regular expression) is not counted as lines; quadratic work of
that kind shows in memory or not at all, so the bench scripts stay the place for speed.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    lines: int
    peak_bytes: int
    raised: BaseException | None


def cost(call: Callable[[], object], allowed: tuple[type[BaseException], ...] = ()) -> Cost:
    """Run `call`, counting executed lines and peak memory. An exception in `allowed` is returned in
    `raised`; any other propagates."""
    lines = 0

    def local(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def tracer(frame, event, arg):
        return local

    previous = sys.gettrace()
    tracemalloc.start()
    raised = None
    sys.settrace(tracer)
    try:
        call()
    except allowed as exc:
        raised = exc
    finally:
        sys.settrace(previous)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Cost(lines, peak, raised)


def assert_linear(c: Cost, size: int, *, base_lines: int, lines_per_unit: int, base_bytes: int = 64 * 1024,
                  bytes_per_unit: int = 64, what: str = "bytes") -> None:
    """The call's lines and memory stay within a constant plus a multiple of its input's size."""
    assert c.lines <= base_lines + lines_per_unit * size, f"{c.lines} lines executed for {size} {what}"
    assert c.peak_bytes <= base_bytes + bytes_per_unit * size, f"{c.peak_bytes} bytes at peak for {size} {what}"
