"""The fast path of reading a trace line (trace/decode.py: orjson and generated decoders) reads every
line it accepts into the very event the slow path (the standard library's parser and
codec.event_from_dict) reads, and refuses (hands to the slow path) everything else."""

from __future__ import annotations

import dataclasses
import enum
import json
import subprocess
import types
import typing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pdiag.trace import decode
from p2pdiag.trace.events import EVENT_TYPES, EventDecodeError, event_from_dict

ROOT = Path(__file__).resolve().parents[2]


def _recorded_lines() -> list[bytes]:
    listed = subprocess.run(["git", "ls-files", "*.jsonl"], cwd=ROOT, capture_output=True, text=True, check=True)
    out = []
    for name in listed.stdout.split():
        out += [line for line in (ROOT / name).read_bytes().splitlines()[1:] if line.strip()]
    return out


def _slow(line: bytes) -> tuple[str, object]:
    """What the slow path makes of LINE: ("event", e), ("unknown", None), ("error", message) or ("json", None)."""
    try:
        data = json.JSONDecoder(parse_constant=lambda name: 1 / 0).decode(line.decode("utf-8"))
    except (ValueError, ZeroDivisionError, RecursionError):
        return ("json", None)
    if not isinstance(data, dict):
        return ("json", None)
    try:
        e = event_from_dict(data)
    except EventDecodeError as exc:
        return ("error", str(exc))
    return ("unknown", None) if e is None else ("event", e)


def _agrees(line: bytes) -> bool:
    """The fast path either refuses LINE or reads it into exactly what the slow path reads."""
    fast = decode.fast_event(line)
    if fast is decode.FAIL:
        return True
    kind, slow = _slow(line)
    if fast is None:
        return kind == "unknown"
    return kind == "event" and type(fast) is type(slow) and fast == slow and all(
        type(getattr(fast, f.name)) is type(getattr(slow, f.name)) for f in dataclasses.fields(fast))


def test_every_recorded_event_is_read_by_the_fast_path_as_by_the_slow_one():
    lines = _recorded_lines()
    assert len(lines) > 3000
    refused = [line for line in lines if decode.fast_event(line) is decode.FAIL]
    assert refused == []  # the fast path is taken, not skipped
    assert all(_agrees(line) for line in lines)


def _value(hint: typing.Any) -> st.SearchStrategy:
    """Valid JSON values for a field of type HINT, and near misses."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(st.none(), _value(next(a for a in args if a is not type(None))))
    if origin is tuple:
        return st.lists(_value(args[0]), max_size=3)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from([m.value for m in hint])
    return {str: st.text(max_size=8), bool: st.booleans(),
            int: st.integers(min_value=-(2**63), max_value=2**64 - 1),
            float: st.one_of(st.floats(-1e15, 1e15), st.integers(-(10**15), 10**15))}[hint]


ODD = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                st.sampled_from([2**64, -(2**63) - 1, 10**30, 1e300, -1e16, 1e15, "relayed", "OK"]))


@st.composite
def _event_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    cls = EVENT_TYPES[kind]
    hints = typing.get_type_hints(cls)
    data: dict[str, typing.Any] = {"type": kind}
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required or draw(st.booleans()):
            data[f.name] = draw(_value(hints[f.name]))
    for _ in range(draw(st.integers(0, 2))):  # a field dropped, a field with an odd value, a key no event has
        what = draw(st.sampled_from(["drop", "odd", "extra"]))
        name = draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
        if what == "drop":
            data.pop(name, None)
        elif what == "odd":
            data[name] = draw(ODD)
        else:
            data["x_" + name] = draw(ODD)
    if draw(st.integers(0, 20)) == 0:
        data["type"] = draw(st.sampled_from(["future.event", 7, None]))
    return json.dumps(data, separators=(",", ":")).encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_event_line())
def test_generated_events_are_read_alike(line):
    assert _agrees(line), line


def test_where_orjson_and_the_standard_library_differ_the_slow_path_reads():
    ping = '{"type":"ping.completed","t_s":1.5,"path":"relayed","connection_id":"c","rtt_s":%s}'
    served = '{"type":"ping.served","t_s":1,"connection_id":"c","count":%s}'
    deep = "[" * 5000 + "]" * 5000
    for line in [served % str(2**64), served % str(-(2**63) - 1), ping % str(10**30), ping % "1e400",
                 ping % "NaN", '{"type":"run.finished","t_s":1,"x":' + deep + "}", '"\\ud800"',
                 '{"type":"ping.served","t_s":1,"connection_id":"\\ud800","count":1}', "\ufeff{}", "  ", "[]"]:
        assert decode.fast_event(line.encode("utf-8", "surrogatepass")) is decode.FAIL, line
    # an integer beyond 64 bits in a key no event reads: either way the same event
    assert _agrees((served % "1").replace("}", f',"x":{2**70}}}').encode())
    assert decode.fast_event((served % "3").encode()) == event_from_dict(json.loads(served % "3"))
