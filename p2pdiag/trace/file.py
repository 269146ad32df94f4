"""The trace file: JSON Lines, a header line then one event a line (docs/trace-format.md).

The writer flushes every line, so a run stopped by Ctrl-C or a crash leaves a trace that
`p2pdiag analyze` can still read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import IO, Any

from p2pdiag.errors import TraceFileError, UsageError
from p2pdiag.inputs import MiB, iter_lines, open_regular
from p2pdiag.trace import decode
from p2pdiag.trace.events import Event, EventDecodeError, event_from_dict, event_to_dict
from p2pdiag.trace.events.codec import INT_MAX, SECONDS_MAX, shown

SCHEMA_VERSION = 1
HEADER_TYPE = "p2pdiag.trace"


@dataclass(frozen=True, slots=True)
class Header:
    command: str
    options: dict[str, Any]
    started_at: str  # ISO 8601, UTC, wall clock
    p2pdiag_version: str
    libraries: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    redacted: bool = False  # addresses, peer ids and TURN credentials replaced (trace/redact.py)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "type": HEADER_TYPE,
            "schema_version": self.schema_version,
            "p2pdiag_version": self.p2pdiag_version,
            "command": self.command,
            "options": self.options,
            "started_at": self.started_at,
            "libraries": self.libraries,
        }
        if self.redacted:  # written only when true: an unredacted trace reads as before
            out["redacted"] = True
        return out


@dataclass(frozen=True, slots=True)
class Trace:
    header: Header
    events: tuple[Event, ...]
    skipped_unknown: int = 0  # events of types this version does not know
    truncated: bool = False  # the last line was cut short (the run died mid-write)


class TraceWriter:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write_header(self, header: Header) -> None:
        self._line(header.to_dict())

    def write_event(self, event: Event) -> None:
        self._line(event_to_dict(event))

    def _line(self, obj: dict[str, Any]) -> None:
        self._stream.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._stream.flush()


def dumps(trace: Trace) -> str:
    lines = [json.dumps(trace.header.to_dict(), separators=(",", ":"))]
    lines += [json.dumps(event_to_dict(e), separators=(",", ":")) for e in trace.events]
    return "\n".join(lines) + "\n"


_HEADER_STRINGS = ("command", "started_at", "p2pdiag_version")
# header options that diagnosis reads (relay-check's), and what each must be when present
_OPTION_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "step_timeouts_s": ("an object of step names to seconds",
                        lambda v: isinstance(v, dict) and all(_seconds(s) for s in v.values())),
    "reservations": ("an integer or null", lambda v: v is None or (type(v) is int and 0 <= v <= INT_MAX)),
    "measure_limits": ("true, false or null", lambda v: v is None or isinstance(v, bool)),
}


def _seconds(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and -SECONDS_MAX <= value <= SECONDS_MAX)


def _parse_header(obj: Any, where: str) -> Header:
    if not isinstance(obj, dict) or obj.get("type") != HEADER_TYPE:
        raise TraceFileError(f"{where}: not a p2pdiag trace (the first line is not a p2pdiag.trace header)")
    version = obj.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise TraceFileError(f"{where}: trace schema_version {shown(version, 40)}; "
                             f"this p2pdiag reads version {SCHEMA_VERSION}")
    for key in _HEADER_STRINGS:
        if key not in obj:
            raise TraceFileError(f"{where}: header is missing {key!r}")
        if not isinstance(obj[key], str):
            raise TraceFileError(f"{where}: header field {key!r} should be a string")
    for key in ("options", "libraries"):
        if not isinstance(obj.get(key) or {}, dict):
            raise TraceFileError(f"{where}: header field {key!r} should be an object")
    redacted = obj.get("redacted", False)
    if not isinstance(redacted, bool):
        raise TraceFileError(f"{where}: header field 'redacted' should be true or false")
    options = dict(obj.get("options") or {})
    for key, (should, ok) in _OPTION_CHECKS.items():
        if key in options and not ok(options[key]):
            raise TraceFileError(f"{where}: header options: {key!r} should be {should}")
    return Header(command=obj["command"], options=options, started_at=obj["started_at"],
                  p2pdiag_version=obj["p2pdiag_version"], libraries=dict(obj.get("libraries") or {}),
                  redacted=redacted)


class _NotJson(ValueError):
    """A line that is not one JSON value; the message says why."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


# NaN and Infinity are Python's extension, not JSON: refused, so `analyze --json` can never echo one
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _json(line: bytes | str) -> Any:
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as exc:
        raise _NotJson(f"not UTF-8 text (byte {exc.start}); a p2pdiag trace is JSON Lines") from None
    try:
        return _DECODER.decode(text)
    except _NotJson:
        raise
    except RecursionError:
        raise _NotJson("JSON nested too deeply") from None
    except ValueError:  # JSONDecodeError, or an integer of more than 4300 digits
        raise _NotJson("not JSON; a p2pdiag trace is JSON Lines") from None


class TraceStream:
    """A trace read as it is iterated: the header at once, then `events()` one at a time, each line
    checked as it comes (the same errors as `load`, at the same lines), memory one line at a time.
    `skipped_unknown` and `truncated` are known once `events()` is exhausted."""

    def __init__(self, lines: Iterable[tuple[int, bytes | str]], name: str, ends_cleanly: Callable[[], bool]) -> None:
        self._lines = iter(lines)
        self._name = name
        self._ends_cleanly = ends_cleanly
        self.skipped_unknown = 0  # events of types this version does not know
        self.truncated = False  # the last line was cut short (the run died mid-write)
        first = next(self._lines, None)
        if first is None or first[0] != 1 or not first[1].strip():
            raise TraceFileError(f"{name}: empty file, not a p2pdiag trace")
        try:
            self.header = _parse_header(_json(first[1]), f"{name}:1")
        except _NotJson as exc:
            raise TraceFileError(f"{name}:1: {exc}") from None

    def events(self) -> Iterator[Event]:
        name = self._name
        bad: tuple[int, str] | None = None  # a line that is not JSON: an error unless it is the last
        fast_event, fail = decode.fast_event, decode.FAIL
        for number, line in self._lines:
            if bad is not None:
                raise TraceFileError(f"{name}:{bad[0]}: {bad[1]}")
            if type(line) is bytes:
                event = fast_event(line)
                if event is not fail:
                    if event is None:
                        self.skipped_unknown += 1
                    else:
                        yield event  # type: ignore[misc]
                    continue
            if not line.strip():
                continue
            try:
                obj = _json(line)
            except _NotJson as exc:
                bad = (number, str(exc))
                continue
            if type(obj) is not dict:
                raise TraceFileError(f"{name}:{number}: not a JSON object")
            try:
                event = event_from_dict(obj)
            except EventDecodeError as exc:
                raise TraceFileError(f"{name}:{number}: bad event: {exc}") from None
            if event is None:
                self.skipped_unknown += 1
            else:
                yield event
        if bad is not None:
            if self._ends_cleanly():
                raise TraceFileError(f"{name}:{bad[0]}: {bad[1]}")
            self.truncated = True  # the writer was killed mid-line; everything before is good


def _read(lines: Iterable[tuple[int, bytes | str]], name: str, ends_cleanly: Callable[[], bool]) -> Trace:
    """The trace in LINES (numbered, without their newlines). ENDS_CLEANLY says whether the file's
    last byte is a newline; it is asked only when the last line is not JSON (a cut-off line)."""
    stream = TraceStream(lines, name, ends_cleanly)
    events = tuple(stream.events())
    return Trace(header=stream.header, events=events, skipped_unknown=stream.skipped_unknown,
                 truncated=stream.truncated)


def loads(text: str, name: str = "trace") -> Trace:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return _read(enumerate(lines, start=1), name, lambda: text.endswith("\n"))


# A trace is read line by line, each line at most MAX_LINE_BYTES, the file at most MAX_BYTES
# (docs/trace-format.md says both): recorded lines are under 2 KiB, 300 bytes on average.
MAX_LINE_BYTES = MiB
MAX_BYTES = 1024 * MiB


def load(path: str | FsPath) -> Trace:
    stream = open_stream(path)
    events = tuple(stream.events())
    return Trace(header=stream.header, events=events, skipped_unknown=stream.skipped_unknown,
                 truncated=stream.truncated)


def open_stream(path: str | FsPath) -> TraceStream:
    """The trace at PATH, its header read, its events to be read one at a time (`TraceStream.events`:
    a UsageError from the file itself while they are read is a TraceFileError, as `load`'s)."""
    p = FsPath(path)

    def ends_cleanly() -> bool:
        try:
            fd = open_regular(p, "TRACE", MAX_BYTES)
        except UsageError as exc:
            raise TraceFileError(str(exc)) from None
        try:
            size = os.fstat(fd).st_size
            return size > 0 and os.pread(fd, 1, size - 1) == b"\n"
        finally:
            os.close(fd)

    def lines() -> Iterator[tuple[int, bytes]]:
        try:
            yield from iter_lines(p, "TRACE", MAX_BYTES, MAX_LINE_BYTES)
        except UsageError as exc:  # not a readable regular file of a sane size: a bad trace file all the same
            raise TraceFileError(str(exc)) from None

    return TraceStream(lines(), str(p), ends_cleanly)
