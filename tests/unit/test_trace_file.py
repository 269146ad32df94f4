import json

import pytest

from p2pdiag.trace import events as ev
from p2pdiag.trace.file import Header, Trace, TraceFileError, TraceWriter, dumps, load, loads
from p2pdiag.trace.recorder import Recorder

HEADER = Header(command="dial", options={"target": "x"}, started_at="2026-11-21T00:00:00+00:00",
                p2pdiag_version="0.1.0", libraries={"libp2p": "0.8.1"})


def _trace() -> Trace:
    clock = iter([0.0, 0.5, 1.25, 2.0]).__next__
    rec = Recorder(clock=clock)
    rec.record(ev.RelayDialStarted, relay="/ip4/127.0.0.1/tcp/1/p2p/R", relay_peer_id="R", transport="tcp")
    rec.record(ev.RelayDialFailed, relay="/ip4/127.0.0.1/tcp/1/p2p/R", error_kind=ev.ErrorKind.REFUSED,
               error="Connection refused", duration_s=0.75)
    rec.record(ev.RunFinished)
    return Trace(HEADER, rec.events)


def test_recorder_stamps_time_from_the_injected_clock():
    trace = _trace()
    assert [e.t_s for e in trace.events] == [0.5, 1.25, 2.0]


def test_round_trip_is_exact():
    trace = _trace()
    back = loads(dumps(trace))
    assert back.header == trace.header
    assert back.events == trace.events
    assert not back.truncated and back.skipped_unknown == 0


def test_writer_streams_one_flushed_line_per_event(tmp_path):
    path = tmp_path / "t.jsonl"
    with open(path, "w") as f:
        w = TraceWriter(f)
        w.write_header(HEADER)
        for e in _trace().events[:2]:
            w.write_event(e)
        # not closed yet: what is on disk must already be readable (the Ctrl-C case)
        partial = load(path)
    assert len(partial.events) == 2


def test_truncated_last_line_is_tolerated_and_reported():
    text = dumps(_trace())
    cut = text[: text.rindex("{") + 10]
    back = loads(cut)
    assert back.truncated
    assert len(back.events) == 2


def test_unknown_event_types_are_skipped_and_counted():
    text = dumps(_trace()) + json.dumps({"type": "future.event", "t_s": 3.0}) + "\n"
    assert loads(text).skipped_unknown == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("hello\n", ":1: not JSON"),
        ('{"type": "something"}\n', "not a p2pdiag trace"),
        ('{"type": "p2pdiag.trace", "schema_version": 99}\n', "schema_version 99"),
        ('{"type": "p2pdiag.trace", "schema_version": 1}\n', "header is missing"),
    ],
)
def test_bad_headers(content, message):
    with pytest.raises(TraceFileError, match=message):
        loads(content, "t.jsonl")


def test_bad_event_names_its_line():
    lines = dumps(_trace()).splitlines()
    lines[2] = json.dumps({"type": "relay.dial_failed", "t_s": 1, "relay": "r", "error_kind": "bogus",
                           "error": "", "duration_s": 0})
    with pytest.raises(TraceFileError, match=r"t.jsonl:3: bad event: field 'error_kind'"):
        loads("\n".join(lines) + "\n", "t.jsonl")
    lines[2] = json.dumps({"type": "relay.dial_failed", "t_s": 1})
    with pytest.raises(TraceFileError, match=r":3: bad event: relay.dial_failed: missing field 'relay'"):
        loads("\n".join(lines) + "\n", "t.jsonl")
    lines[2] = "[1, 2]"
    with pytest.raises(TraceFileError, match=r":3: not a JSON object"):
        loads("\n".join(lines) + "\n", "t.jsonl")


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(TraceFileError, match="no such file"):
        load(tmp_path / "missing.jsonl")
    with pytest.raises(TraceFileError, match="is a directory"):
        load(tmp_path)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TraceFileError, match="not UTF-8"):
        load(binary)


def test_every_event_type_round_trips():
    # one instance of each registered type, built from its field types, must survive the file
    import dataclasses
    import enum
    import typing

    samples = {str: "s", int: 7, float: 1.5, bool: True}
    for kind, cls in ev.EVENT_TYPES.items():
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            base = args[0] if args and typing.get_origin(hint) is not tuple else hint
            if typing.get_origin(hint) is tuple or typing.get_origin(base) is tuple:
                item = typing.get_args(hint if typing.get_origin(hint) is tuple else base)[0]
                kwargs[f.name] = (samples[item], samples[item]) if item in samples else ("a", "b")
            elif isinstance(base, type) and issubclass(base, enum.Enum):
                kwargs[f.name] = next(iter(base))
            else:
                kwargs[f.name] = samples[base]
        event = cls(**kwargs)
        back = loads(dumps(Trace(HEADER, (event,)))).events[0]
        assert back == event, kind
