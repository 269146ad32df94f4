"""Fuzzing trace loading: committed traces, mutated line by line. Only TraceFileError may come out.

The mutations that once escaped (huge integers, deep nesting, NaN) are separate tests too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.work import assert_linear, cost

from p2pdiag.diagnosis import diagnose
from p2pdiag.trace.file import TraceFileError, loads

ROOT = Path(__file__).resolve().parent.parent
TRACES = sorted((ROOT / "traces").glob("*/*.jsonl"))  # every recorded trace, one folder per topic
assert len(TRACES) >= 50, f"the recorded traces are not where this test looks: {ROOT / 'traces'}"
TEXTS = [p.read_text() for p in TRACES]
# Lines executed to load and judge a trace: a constant plus so many per character (support/work.py).
BASE_LINES = 200_000
LINES_PER_CHAR = 20
BASE_BYTES = 8 << 20  # a finding's first use may import its module
BYTES_PER_CHAR = 256  # a JSON line read into Python objects, and the events built from them

diagnose(loads(TEXTS[0], TRACES[0].name))  # the first verdict imports and caches what every later one uses

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False),
                    st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)


@st.composite
def mutated_trace(draw) -> str:
    lines = draw(st.sampled_from(TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["field", "drop-field", "cut", "swap", "dup", "garbage"]))
        if op in ("field", "drop-field"):
            try:
                obj = json.loads(lines[i])
            except ValueError:
                continue
            if not isinstance(obj, dict) or not obj:
                continue
            key = draw(st.sampled_from(sorted(obj)))
            if op == "field":
                obj[key] = draw(json_values)
            else:
                del obj[key]
            lines[i] = json.dumps(obj)
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        else:
            lines[i] = draw(st.text(max_size=60))
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


def _load_and_diagnose(text: str) -> None:
    """What `p2pdiag analyze` does with a file: load it, then judge it."""
    c = cost(lambda: diagnose(loads(text, "fuzzed.jsonl")), (TraceFileError,))
    assert_linear(c, len(text), base_lines=BASE_LINES, lines_per_unit=LINES_PER_CHAR,
                  base_bytes=BASE_BYTES, bytes_per_unit=BYTES_PER_CHAR, what="characters")


def test_the_committed_traces_are_there():
    assert len(TRACES) >= 10


@given(mutated_trace())
def test_mutated_traces_load_or_are_refused(text):
    _load_and_diagnose(text)


HEADER, FIRST_EVENT = TEXTS[0].splitlines()[:2]


@pytest.mark.parametrize("second_line", [
    FIRST_EVENT.replace('"t_s":', '"t_s":NaN,"was":', 1),
    FIRST_EVENT.replace('"t_s":', '"t_s":-Infinity,"was":', 1),
])
def test_non_finite_numbers_do_not_escape(second_line):
    _load_and_diagnose(f"{HEADER}\n{second_line}\n")


def test_a_huge_integer_is_a_trace_file_error():
    _load_and_diagnose(f"{HEADER}\n" + FIRST_EVENT.replace('"t_s":', '"t_s":' + "9" * 5000 + ',"was":', 1) + "\n")


def test_deep_nesting_is_a_trace_file_error():
    _load_and_diagnose(f"{HEADER}\n" + '{"type":"x","a":' + "[" * 100_000 + "]" * 100_000 + "}\n")
