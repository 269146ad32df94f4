"""Fuzzing the js-libp2p log reader: recorded logs, mutated line by line. Nothing may come out of
reading and judging one but a verdict or TraceFileError (a listening node's log is refused)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from support.work import assert_linear, cost

from p2pdiag.diagnosis.jslog import diagnose_jslog
from p2pdiag.errors import TraceFileError
from p2pdiag.evidence import jslog

LOGS = sorted((Path(__file__).resolve().parent.parent / "traces" / "jslog").glob("*.log"))
assert len(LOGS) >= 5, "the recorded js logs are not where this test looks"
LINES = [p.read_bytes().splitlines() for p in LOGS]


# Lines executed and peak memory to read and judge a log: a constant plus so many per byte (support/work.py).
BASE_LINES = 200_000
LINES_PER_BYTE = 20
BASE_BYTES = 1 << 20

# the last ones are times of day of a browser console's log: one that is none, and a midnight
ODD_NUMBERS = [b"99999999999999999999999", b"0", b"-1", b"13:61:61.999Z", b" 99:99:99.999 ", b" 00:00:00.000 "]


@st.composite
def mutated_log(draw) -> list[bytes]:
    """A recorded log with lines cut short, moved, repeated, dropped, replaced by bytes, or with odd numbers."""
    lines = list(draw(st.sampled_from(LINES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(lines) - 1))
        line = lines[at]
        match draw(st.sampled_from(["shorten", "move", "repeat", "drop", "bytes", "numbers"])):
            case "shorten":
                lines[at] = line[: draw(st.integers(0, len(line)))]
            case "move":
                lines.insert(draw(st.integers(0, len(lines) - 1)), lines.pop(at))
            case "repeat":
                lines[at:at] = [line] * draw(st.integers(1, 50))
            case "drop" if len(lines) > 1:
                lines.pop(at)
            case "numbers":
                odd = draw(st.sampled_from(ODD_NUMBERS))
                lines[at] = line.replace(b"120000", odd).replace(b"2048", odd).replace(b":35.", odd, 1)
                if line[:1].isdigit() and line[2:3] == b":":  # a browser console's time of day
                    lines[at] = odd.strip() + line[12:]
            case _:
                lines[at] = draw(st.binary(max_size=80))
    return lines


@given(mutated_log())
def test_mutated_logs_give_a_verdict(lines):
    def read_and_judge() -> None:
        log = jslog.read(enumerate(lines, start=1), "fuzzed.log")
        if log.records:
            diagnose_jslog(log)

    c = cost(read_and_judge, (TraceFileError,))
    assert_linear(c, sum(len(line) for line in lines), base_lines=BASE_LINES, lines_per_unit=LINES_PER_BYTE,
                  base_bytes=BASE_BYTES)
