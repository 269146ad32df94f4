"""Fuzzing the chrome://webrtc-internals dump reader: recorded dumps with their JSON mutated node by node,
and their bytes cut, flipped or replaced. Nothing may come out of reading and judging one but a verdict
or TraceFileError, and the work stays linear in the dump's size (support/work.py, never the clock)."""

from __future__ import annotations

import copy
import gzip
import json
import os
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from support.work import assert_linear, cost

from p2pdiag.diagnosis.webrtc_internals import diagnose_dump
from p2pdiag.errors import TraceFileError
from p2pdiag.evidence import webrtc_internals as wi

DUMPS = sorted((Path(__file__).resolve().parent.parent / "traces" / "webrtc-internals").glob("*.json.gz"))
assert len(DUMPS) >= 3, "the recorded webrtc-internals dumps are not where this test looks"
RAW = [p.read_bytes() for p in DUMPS]
DOCS = [json.loads(gzip.decompress(r)) for r in RAW]

BASE_LINES = 100_000  # a recorded dump takes under 4,000 lines to read and judge
LINES_PER_BYTE = 2  # 100 copies of a peer connection: about 0.11 lines per byte
BASE_BYTES = 4 << 20

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
odd_strings = st.sampled_from(['"failed"', '"connected"', "[1,2", "[]", '["x"]', "not json", "",
                               '{"urls":"turn:u:p@h"}', "candidate:1 1 udp 1 1.2.3.4 99999 typ srflx raddr x rport 1",
                               "url: turn:h\nerror_code: 401\nerror_text: Unauthorized"])


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in list(node.items())[:40]:
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:40]):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_doc(draw):
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    paths = list(_paths(doc))
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            new = draw(odd_strings | json_values) if draw(st.booleans()) else None
            match draw(st.sampled_from(["replace", "delete", "repeat"])):
                case "replace":
                    parent[path[-1]] = new
                case "delete" if isinstance(parent, dict):
                    del parent[path[-1]]
                case "repeat" if isinstance(parent, list):
                    parent[path[-1]:path[-1]] = [parent[path[-1]]] * draw(st.integers(1, 30))
                case _:
                    parent[path[-1]] = new
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def _judge(doc: object) -> None:
    diagnose_dump(wi.read(doc, "fuzzed.json"))


@given(mutated_doc())
def test_mutated_dumps_give_a_verdict(doc):
    size = len(json.dumps(doc))
    c = cost(lambda: _judge(doc), (TraceFileError,))
    assert_linear(c, size, base_lines=BASE_LINES, lines_per_unit=LINES_PER_BYTE, base_bytes=BASE_BYTES)


@st.composite
def mutated_bytes(draw):
    data = bytearray(gzip.decompress(draw(st.sampled_from(RAW))) if draw(st.booleans()) else draw(st.sampled_from(RAW)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["cut", "flip", "insert"])):
            case "cut":
                del data[at:]
                if not data:
                    data = bytearray(b"{")
            case "flip":
                data[at] ^= draw(st.integers(1, 255))
            case _:
                data[at:at] = draw(st.binary(max_size=40))
    return bytes(data)


@given(mutated_bytes())
def test_mutated_files_are_read_or_refused(data):
    fd, name = tempfile.mkstemp(suffix=".json.gz")
    try:
        os.write(fd, data)
        os.close(fd)
        c = cost(lambda: diagnose_dump(wi.load(name)), (TraceFileError,))
    finally:
        os.unlink(name)
    assert_linear(c, len(data) * 40, base_lines=BASE_LINES, lines_per_unit=LINES_PER_BYTE, base_bytes=BASE_BYTES)
