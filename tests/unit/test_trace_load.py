"""Loading a trace never crashes or hangs: whatever the file holds, it loads or gives one
TraceFileError naming the file, the line and (for a bad value) the field; `analyze` turns that
into one line `p2pdiag: error: ...` and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import p2pdiag.trace.file as trace_file
from p2pdiag.trace.file import TraceFileError, load

ROOT = Path(__file__).resolve().parents[2]
HEADER = ('{"type":"p2pdiag.trace","schema_version":1,"p2pdiag_version":"0.1.0","command":"dial",'
          '"options":{},"started_at":"2026-11-21T06:11:59.538+00:00","libraries":{}}')
PING = '{"type":"ping.completed","t_s":1.5,"path":"relayed","connection_id":"relayed-1","rtt_s":%s}'
HOP = ('{"type":"hop.status_received","t_s":0.6,"relay":"/ip4/127.0.0.1/tcp/1/p2p/R","status_code":100,'
       '"status_name":"OK","announced_duration_s":%s,"announced_data_bytes":131072,"duration_s":0.01}')
DEEP = "[" * 100_000 + "]" * 100_000
RELAY_CHECK = HEADER.replace('"dial"', '"relay-check"').replace('"options":{}', '"options":%s')


def _event(text: str) -> bytes:
    return f"{HEADER}\n{text}\n".encode()


# (what, file content, the message's fragments after "FILE:"); None: loads
CASES = [
    ("10**400 in a float field", _event(PING % ("1" + "0" * 400)), [":2: bad event: field 'rtt_s'", "out of range"]),
    ("10**400 in an int field", _event(HOP % ("1" + "0" * 400)), [":2: bad event: field 'announced_duration_s'",
                                                                   "more than 64 bits"]),
    ("2**64 in an int field", _event(HOP % str(2**64)), [":2:", "'announced_duration_s'", "64 bits"]),
    ("a 5000-digit integer", _event(PING % ("9" * 5000)), [":2: not JSON"]),
    ("1e400 (infinite) in a float field", _event(PING % "1e400"), [":2: bad event: field 'rtt_s'", "out of range"]),
    ("1e300 seconds", _event(PING % "1e300"), [":2: bad event: field 'rtt_s'", "out of range"]),
    ("NaN", _event(PING % "NaN"), [":2: NaN is not a JSON number"]),
    ("Infinity", _event(PING % "Infinity"), [":2: Infinity is not a JSON number"]),
    ("-Infinity", _event(PING % "-Infinity"), [":2: -Infinity is not a JSON number"]),
    ("NaN in the header", (HEADER.replace('"options":{}', '"options":{"x":NaN}') + "\n").encode(),
     [":1: NaN is not a JSON number"]),
    ("deep nesting in an event", _event(f'{{"type":"run.finished","t_s":1,"x":{DEEP}}}'),
     [":2: JSON nested too deeply"]),
    ("deep nesting as the header", f"{DEEP}\n".encode(), [":1: JSON nested too deeply"]),
    ("a binary file", bytes(range(256)) * 4, [":1: not JSON"]),
    ("a binary file, not UTF-8", b"\xff\xfe" + bytes(range(256)) * 4, [":1: not UTF-8 text"]),
    ("no header: an event first", f"{PING % '0.1'}\n{HEADER}\n".encode(), [":1: not a p2pdiag trace"]),
    ("a header that is a list", b"[1, 2]\n", [":1: not a p2pdiag trace"]),
    ("schema_version true", HEADER.replace(':1,', ':true,').encode() + b"\n", [":1: trace schema_version True"]),
    ("command a number", HEADER.replace('"dial"', "7").encode() + b"\n", [":1: header field 'command' should be"]),
    ("header without started_at", HEADER.replace('"started_at"', '"began"').encode() + b"\n",
     [":1: header is missing 'started_at'"]),
    ("options a list", HEADER.replace('"options":{}', '"options":[["a",1]]').encode() + b"\n",
     [":1: header field 'options' should be an object"]),
    ("relay-check step timeouts a list", (RELAY_CHECK % '{"step_timeouts_s":[1]}' + "\n").encode(),
     [":1: header options: 'step_timeouts_s' should be"]),
    ("relay-check step timeout 10**400", (RELAY_CHECK % ('{"step_timeouts_s":{"hop":1%s}}' % ("0" * 400)) + "\n")
     .encode(), [":1: header options: 'step_timeouts_s'"]),
    ("relay-check reservations a string", (RELAY_CHECK % '{"reservations":"3"}' + "\n").encode(),
     [":1: header options: 'reservations' should be an integer"]),
    ("a string for a number", _event(PING % '"fast"'), [":2: bad event: field 'rtt_s' should be a number"]),
    ("true for a number", _event(PING % "true"), [":2: bad event: field 'rtt_s' should be a number"]),
    ("a float for an integer", _event('{"type":"ping.served","t_s":1,"connection_id":"c","count":1.5}'),
     [":2: bad event: field 'count' should be an integer"]),
    ("a number for a string", _event('{"type":"ping.served","t_s":1,"connection_id":7,"count":1}'),
     [":2: bad event: field 'connection_id' should be a string"]),
    ("1 for a boolean", _event('{"type":"target.resolved","t_s":1,"peer_id":"P","relays":[],"method":"peer_id",'
                               '"webrtc_requested":1}'), [":2: bad event: field 'webrtc_requested' should be true"]),
    ("an object for a list", _event('{"type":"target.resolved","t_s":1,"peer_id":"P","relays":{"a":1},'
                                    '"method":"peer_id","webrtc_requested":true}'),
     [":2: bad event: field 'relays' should be a list"]),
    ("a number in a list of strings", _event('{"type":"target.resolved","t_s":1,"peer_id":"P","relays":["a",2],'
                                             '"method":"peer_id","webrtc_requested":true}'),
     [":2: bad event: field 'relays' should be a string"]),
    ("a list for an enum", _event(PING.replace('"relayed"', '["relayed"]') % "0.1"),
     [":2: bad event: field 'path': ['relayed'] is not one of"]),
    ("a long string for an enum", _event(PING.replace('"relayed"', '"%s"' % ("x" * 5000)) % "0.1"),
     [":2: bad event: field 'path': 'xxx", "…"]),
    ("an object for an enum", _event(PING.replace('"relayed"', '{"a":1}') % "0.1"), [":2: bad event: field 'path'"]),
    ("a list for an event", _event("[1, 2]"), [":2: not a JSON object"]),
    ("a bad line before the last", f"{HEADER}\n{{bad\n{PING % '0.1'}\n".encode(), [":2: not JSON"]),
    ("a bad last line that ended", f"{HEADER}\n{PING % '0.1'}\n{{bad\n".encode(), [":3: not JSON"]),
    ("empty", b"", [": empty file"]),
]


@pytest.mark.parametrize(("what", "content", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_trace_is_one_error_naming_file_line_and_field(tmp_path, what, content, fragments):
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceFileError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}"), message
    assert "\n" not in message and len(message) < 300, message
    for fragment in fragments:
        assert fragment in message, (what, message)


def test_what_still_loads(tmp_path):
    path = tmp_path / "t.jsonl"
    cut = PING % "0.25"
    # a cut-off last line (no newline at the end): everything before it, and the trace says so
    path.write_bytes(_event(PING % "0.5") + cut[:30].encode())
    trace = load(path)
    assert trace.truncated and [e.rtt_s for e in trace.events] == [0.5]
    # cut inside a multi-byte character: the same
    path.write_bytes(_event(PING % "0.5") + '{"type":"ping.failed","error":"é'.encode()[:-1])
    assert load(path).truncated
    # an unknown type is skipped and counted; unknown keys ignored; an integer where a float goes is fine
    path.write_bytes(_event('{"type":"future.event","t_s":1,"x":[[[1]]]}') + (PING % "1").encode() + b"\n"
                     + (HOP % str(2**64 - 1)).encode() + b"\n")
    trace = load(path)
    assert trace.skipped_unknown == 1 and not trace.truncated
    assert trace.events[0].rtt_s == 1.0 and isinstance(trace.events[0].rtt_s, float)
    assert trace.events[1].announced_duration_s == 2**64 - 1
    # CRLF line ends and blank lines
    path.write_bytes(f"{HEADER}\r\n\r\n{PING % '0.5'}\r\n".encode())
    assert len(load(path).events) == 1


def test_files_that_are_not_regular_or_too_big(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(TraceFileError, match="FIFO"):
        load(fifo)  # refused without waiting for a writer
    with pytest.raises(TraceFileError, match="is a device"):
        load("/dev/zero")
    path = tmp_path / "t.jsonl"
    path.write_bytes(_event(PING % "0.5") * 20)
    monkeypatch.setattr(trace_file, "MAX_BYTES", 1000)
    with pytest.raises(TraceFileError, match="more than the 1000"):
        load(path)
    monkeypatch.setattr(trace_file, "MAX_BYTES", 10_000)
    monkeypatch.setattr(trace_file, "MAX_LINE_BYTES", 100)
    with pytest.raises(TraceFileError, match="line 1 is longer than 100 bytes"):
        load(path)


def test_the_caps_are_generous_for_a_long_run():
    # a 1,000,000-event trace of the recorded average (~300 bytes a line) fits, and so does any recorded line
    recorded = [ROOT / p for p in subprocess.run(["git", "ls-files", "*.jsonl"], cwd=ROOT, capture_output=True,
                                                 text=True, check=True).stdout.split()]
    lines = [len(line) for p in recorded for line in p.read_bytes().splitlines()]
    assert 1_000_000 * 3 * sum(lines) / len(lines) < trace_file.MAX_BYTES
    assert 100 * max(lines) < trace_file.MAX_LINE_BYTES


def _analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd=ROOT, check=False)


def _hostile(tmp_path: Path, name: str) -> Path:
    """A recorded dial trace with one value made hostile (what used to crash diagnosis, or print NaN)."""
    lines = (ROOT / "tests/traces/relay/dial-js-relay-duration-cut.jsonl").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"hop.status_received"' in line)
    value = {"int": "1" + "0" * 400, "nan": "NaN"}[name]
    lines[at] = lines[at].replace('"announced_duration_s":4000', f'"announced_duration_s":{value}')
    assert lines[at] != (ROOT / "tests/traces/relay/dial-js-relay-duration-cut.jsonl").read_text().splitlines()[at]
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("case", ["int", "nan", "float", "deep", "binary", "fifo", "/dev/zero"])
def test_analyze_says_one_line_and_exits_2(tmp_path, case):
    if case in ("int", "nan"):
        path = _hostile(tmp_path, case)
    elif case == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif case == "/dev/zero":
        path = Path(case)
    else:
        path = tmp_path / f"{case}.jsonl"
        path.write_bytes({"float": _event(PING % ("1" + "0" * 400)), "deep": _event(DEEP),
                          "binary": os.urandom(4096)}[case])
    for as_json in (False, True):
        result = _analyze(str(path), *(["--json"] if as_json else []))
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("p2pdiag: error: "), result.stderr
        assert str(path) in lines[0]
        assert "Traceback" not in result.stderr + result.stdout
        if as_json:
            json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"--json printed {c}"))
