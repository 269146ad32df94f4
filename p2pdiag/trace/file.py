"""The trace file: JSON Lines, a header line then one event a line (docs/trace-format.md).

The writer flushes every line, so a run stopped by Ctrl-C or a crash leaves a trace that
`p2pdiag analyze` can still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import IO, Any

from p2pdiag.errors import TraceFileError  # noqa: F401  (re-exported: its home is errors.py)
from p2pdiag.trace.events import Event, EventDecodeError, event_from_dict, event_to_dict

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": HEADER_TYPE,
            "schema_version": self.schema_version,
            "p2pdiag_version": self.p2pdiag_version,
            "command": self.command,
            "options": self.options,
            "started_at": self.started_at,
            "libraries": self.libraries,
        }


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


def _parse_header(obj: Any, where: str) -> Header:
    if not isinstance(obj, dict) or obj.get("type") != HEADER_TYPE:
        raise TraceFileError(f"{where}: not a p2pdiag trace (the first line is not a p2pdiag.trace header)")
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        raise TraceFileError(
            f"{where}: trace schema_version {version!r}; this p2pdiag reads version {SCHEMA_VERSION}"
        )
    try:
        return Header(
            command=str(obj["command"]),
            options=dict(obj.get("options") or {}),
            started_at=str(obj["started_at"]),
            p2pdiag_version=str(obj["p2pdiag_version"]),
            libraries=dict(obj.get("libraries") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceFileError(f"{where}: header is missing or has a bad field ({exc})") from None


def loads(text: str, name: str = "trace") -> Trace:
    lines = text.split("\n")
    ends_cleanly = text.endswith("\n")
    if ends_cleanly:
        lines = lines[:-1]
    if not lines or not lines[0].strip():
        raise TraceFileError(f"{name}: empty file, not a p2pdiag trace")
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError:
        raise TraceFileError(f"{name}:1: not JSON; a p2pdiag trace is JSON Lines") from None
    header = _parse_header(first, f"{name}:1")
    events: list[Event] = []
    skipped = 0
    truncated = False
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        last = number == len(lines)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if last and not ends_cleanly:
                truncated = True  # the writer was killed mid-line; everything before is good
                break
            raise TraceFileError(f"{name}:{number}: not a JSON object") from None
        if not isinstance(obj, dict):
            raise TraceFileError(f"{name}:{number}: not a JSON object")
        try:
            event = event_from_dict(obj)
        except (EventDecodeError, TypeError) as exc:
            raise TraceFileError(f"{name}:{number}: bad event: {exc}") from None
        if event is None:
            skipped += 1
        else:
            events.append(event)
    return Trace(header=header, events=tuple(events), skipped_unknown=skipped, truncated=truncated)


def load(path: str | FsPath) -> Trace:
    p = FsPath(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise TraceFileError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise TraceFileError(f"{p}: is a directory, not a trace file") from None
    except OSError as exc:
        raise TraceFileError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceFileError(f"{p}: not UTF-8 text; a p2pdiag trace is JSON Lines") from None
    return loads(text, str(p))
