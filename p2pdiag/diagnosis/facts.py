"""The typed facts a verdict carries beside its steps and findings, one kind per command.

Diagnosis sets them; the lab and the renderers read them and judge nothing. `--json` shows
them as its `facts` object, made by `as_facts()` here (docs/json-output.md names the fields).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pdiag.diagnosis.model import StepStatus

if TYPE_CHECKING:
    from p2pdiag.diagnosis.codes import Code
    from p2pdiag.diagnosis.reconnect import ReconnectLoop


@dataclass(frozen=True, slots=True)
class TraceNotes:
    """What the trace file itself said: its last line cut short, events of types this p2pdiag does not know,
    its addresses and peer ids replaced by placeholders (--redact)."""

    truncated: bool = False
    unknown_events: int = 0
    redacted: bool = False

    def as_facts(self) -> dict[str, object]:
        notes: dict[str, object] = {}
        if self.truncated:
            notes["trace_truncated"] = True
        if self.unknown_events:
            notes["trace_unknown_events"] = self.unknown_events
        if self.redacted:
            notes["trace_redacted"] = True
        return notes


# --- dial ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitCut:
    """The relay ended the relayed connection at one of its announced limits."""

    cause: str  # "data" or "duration"
    detail: str
    connection_id: str
    bytes_sent: int  # on the circuit stream, below Noise, as p2pdiag counted them
    bytes_received: int
    age_s: float
    at_t_s: float  # when the circuit stream ended, in run time
    during: str  # what the dial was doing then: secure, identify, ping, upgrade, hold, final-ping
    upgrade_step: str | None  # during "upgrade": the step the attempt failed at, when it failed
    data_limit: int | None
    duration_limit_s: float | None

    @property
    def total_bytes(self) -> int:
        return self.bytes_sent + self.bytes_received

    @property
    def before_checks_done(self) -> bool:
        """Cut while p2pdiag was still checking the peer: the cut is why those checks failed."""
        return self.during in ("secure", "identify", "ping", "upgrade")

    def doing(self) -> str:
        return {"secure": "the Noise and muxer handshake", "identify": "identify of the peer",
                "ping": "the first ping", "hold": "the hold", "final-ping": "the final check"}.get(
            self.during, f"the WebRTC upgrade ({self.upgrade_step})" if self.upgrade_step else "the WebRTC upgrade")

    def as_fact(self) -> dict[str, object]:
        return {"cause": self.cause, "connection_id": self.connection_id, "bytes": self.total_bytes,
                "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "age_s": round(self.age_s, 3), "at_t_s": round(self.at_t_s, 3), "during": self.during,
                "upgrade_step": self.upgrade_step, "data_limit": self.data_limit,
                "duration_limit_s": self.duration_limit_s}


class FallbackState(enum.Enum):
    """The dial's relayed connection at its end."""

    HELD = "held"  # open, and the last ping over it was answered
    CUT = "cut"  # closed by the relay or the peer before p2pdiag closed it
    LOST = "lost"  # open (or closed by p2pdiag), but the last ping failed or none was sent
    NONE = "none"  # never secured


@dataclass(frozen=True, slots=True)
class Fallback:
    state: FallbackState
    connection_id: str | None  # the secured relayed connection, when there was one
    cut: LimitCut | None = None  # the relay cut a circuit at an announced limit (this one, or one under a handshake)

    def cut_text(self) -> str:
        """" at 4134 bytes (data limit 4096), during hold" when the relay cut at a limit; else ""."""
        cut = self.cut
        if cut is None:
            return ""
        if cut.cause == "data":
            return f" at {cut.total_bytes} bytes (data limit {cut.data_limit}), during {cut.during}"
        limit = f"{cut.duration_limit_s:g} s" if cut.duration_limit_s else "under a second, announced as 0"
        return f" after {round(cut.age_s, 3):g} s (duration limit {limit}), during {cut.during}"


@dataclass(frozen=True, slots=True)
class DialFacts:
    peer_id: str | None
    relay: str | None  # the relay the secured relayed connection went through
    fallback: Fallback

    def as_facts(self) -> dict[str, object]:
        facts: dict[str, object] = {"peer_id": self.peer_id, "relay": self.relay}
        if self.fallback.connection_id is not None:
            facts["connection_id"] = self.fallback.connection_id
        if self.fallback.cut is not None:
            facts["relay_cut"] = self.fallback.cut.as_fact()
        return facts


# --- listen --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListenFacts:
    inbound_connections: int
    dialers: tuple[str, ...]  # sorted
    upgrades: dict[str, str]  # relayed connection id -> the WebRTC connection id of the upgrade it carried
    reconnect_loops: tuple[ReconnectLoop, ...]

    def as_facts(self) -> dict[str, object]:
        return {"inbound_connections": self.inbound_connections, "dialers": list(self.dialers),
                "upgrades": dict(self.upgrades), "reconnect_loops": [loop.as_fact() for loop in self.reconnect_loops]}


# --- relay-check ---------------------------------------------------------------------------------


class RelayVerdict(enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of relay-check's table: a mark and a short text."""

    status: StepStatus
    text: str


@dataclass(frozen=True, slots=True)
class StepTimeout:
    step: str
    timeout_s: float
    t_s: float


@dataclass(frozen=True, slots=True)
class RelayResult:
    """One relay's result in a relay-check verdict."""

    label: str  # "r1"
    relay: str
    relay_peer_id: str
    transport: str
    source: str
    line: int | None
    measured: dict[str, object]  # what each phase measured, by phase ("connect", "limits", "loop"...); JSON values
    timed_out: tuple[StepTimeout, ...]  # each step.timed_out of this relay
    finished: bool
    duration_s: float | None
    out_of_time: bool
    verdict: RelayVerdict
    cells: dict[str, Cell]  # by column: reachable, hop, reservation, limits, voucher, loop, verdict
    findings: tuple[int, ...]  # indexes into the verdict's findings, most severe first
    finding_codes: tuple[Code, ...]

    def as_fact(self) -> dict[str, object]:
        return {"label": self.label, "relay": self.relay, "relay_peer_id": self.relay_peer_id,
                "transport": self.transport, "source": self.source, "line": self.line, **self.measured,
                "timed_out": [{"step": t.step, "timeout_s": t.timeout_s, "t_s": t.t_s} for t in self.timed_out],
                "finished": self.finished,
                "duration_s": self.duration_s, "out_of_time": self.out_of_time, "verdict": self.verdict.value,
                "cells": {k: {"status": c.status.value, "text": c.text} for k, c in self.cells.items()},
                "findings": list(self.findings), "finding_codes": [str(c) for c in self.finding_codes]}


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    source: str
    line: int
    text: str
    error: str
    duplicate_of: str | None


@dataclass(frozen=True, slots=True)
class RelayCheckFacts:
    relays: tuple[RelayResult, ...]
    rejected_entries: tuple[RejectedEntry, ...]

    def count(self, verdict: RelayVerdict) -> int:
        return sum(1 for r in self.relays if r.verdict is verdict)

    def as_facts(self) -> dict[str, object]:
        return {"relays": [r.as_fact() for r in self.relays],
                "rejected_entries": [{"source": r.source, "line": r.line, "text": r.text, "error": r.error,
                                      "duplicate_of": r.duplicate_of} for r in self.rejected_entries],
                "checked": len(self.relays), **{v.value: self.count(v) for v in RelayVerdict}}


# --- a js-libp2p debug log (analyze) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogRead:
    """What `analyze` read of a log, and what the log lacks to say more."""

    source: str  # "js-libp2p debug log"
    layout: str  # "iso" (Node without a TTY) or "colour" (+Nms diffs)
    lines: int
    records: int  # lines that start a log record
    recognised: int  # records turned into facts
    unrecognised: int  # records no rule matched (counted, not errors)
    continuation: int  # lines continuing a record (objects, stacks)
    foreign: int  # lines of no js-libp2p record
    first_time: str | None
    last_time: str | None
    span_s: float | None
    trace_level: bool  # `:trace` namespaces were enabled
    namespaces: str  # "3.x", or "2.x" when the older namespaces were seen
    lacks: tuple[str, ...]  # what the log does not say, each a short phrase

    def as_facts(self) -> dict[str, object]:
        return {"source": self.source, "layout": self.layout, "lines": self.lines, "records": self.records,
                "recognised": self.recognised, "unrecognised": self.unrecognised,
                "continuation_lines": self.continuation, "foreign_lines": self.foreign,
                "first_time": self.first_time, "last_time": self.last_time,
                "span_s": None if self.span_s is None else round(self.span_s, 3),
                "trace_level": self.trace_level, "namespaces": self.namespaces, "lacks": list(self.lacks)}


@dataclass(frozen=True, slots=True)
class LogFacts:
    """The dial a js-libp2p dialer's log tells: its target, relay, relayed connection and how it ended."""

    read: LogRead
    peer_id: str | None
    relay: str | None  # the relay address the relayed connection went through
    relayed_connection: str | None  # js-libp2p's id of it
    webrtc_connection: str | None  # js-libp2p's id of the upgraded connection
    relay_cut: dict[str, object] | None  # cause, age_s, bytes_written, limits; when the relay cut it
    # rounds, period_s, intervals_s: when this node kept dialing again after closing the relayed connection
    reconnect_loop: dict[str, object] | None = None

    def as_facts(self) -> dict[str, object]:
        facts = {"log": self.read.as_facts(), "peer_id": self.peer_id, "relay": self.relay,
                 "relayed_connection": self.relayed_connection, "webrtc_connection": self.webrtc_connection,
                 "relay_cut": self.relay_cut}
        if self.reconnect_loop is not None:
            facts["reconnect_loop"] = self.reconnect_loop
        return facts


@dataclass(frozen=True, slots=True)
class ReservationLife:
    """One relay's reservation in a listening node's log."""

    relay_peer_id: str
    made: int  # times it was made (again after a removal)
    refreshes: int  # refreshes js-libp2p started
    removed: int  # times it left the node's store
    held: bool  # in place when the log ends
    lost_at_s: float | None  # when it was removed for the last time, not made again after
    expiry: str | None  # the last one's expiry, ISO 8601 UTC

    def as_fact(self) -> dict[str, object]:
        return {"relay_peer_id": self.relay_peer_id, "made": self.made, "refreshes": self.refreshes,
                "removed": self.removed, "held": self.held,
                "lost_at_s": None if self.lost_at_s is None else round(self.lost_at_s, 3), "expiry": self.expiry}


@dataclass(frozen=True, slots=True)
class ListenerLogFacts:
    """What a listening js-libp2p node's log tells: its reservations and who reached it."""

    read: LogRead
    reservations: tuple[ReservationLife, ...]
    inbound_connections: int
    dialers: tuple[str, ...]  # sorted
    webrtc_connections: tuple[str, ...]  # js-libp2p's ids of the upgraded connections

    def as_facts(self) -> dict[str, object]:
        return {"log": self.read.as_facts(), "reservations": [r.as_fact() for r in self.reservations],
                "inbound_connections": self.inbound_connections, "dialers": list(self.dialers),
                "webrtc_connections": list(self.webrtc_connections)}


# --- several inputs on one timeline (several.py) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one input sits on the common timeline."""

    name: str
    offset_s: float | None  # add to the input's own t to get the timeline's; None: not placed
    how: str

    def as_fact(self) -> dict[str, object]:
        return {"input": self.name, "offset_s": None if self.offset_s is None else round(self.offset_s, 3),
                "aligned_by": self.how}


@dataclass(frozen=True, slots=True)
class SeveralFacts:
    inputs: tuple[dict[str, object], ...]  # per input: name, kind, outcome, its facts
    placements: tuple[Placement, ...]
    primary: str  # the input whose outcome is the verdict's

    def as_facts(self) -> dict[str, object]:
        return {"inputs": list(self.inputs), "timeline": [p.as_fact() for p in self.placements],
                "primary": self.primary}


# --- analyze of a chrome://webrtc-internals dump --------------------------------------------------


@dataclass(frozen=True, slots=True)
class DumpRead:
    """What `analyze` read of a webrtc-internals dump, and what the dump lacks to say more."""

    source: str  # "chrome://webrtc-internals dump"
    compressed: bool
    file_bytes: int
    json_bytes: int
    browser: str | None
    peer_connections: int
    candidates: int
    pairs: int
    first_time: str | None
    span_s: float | None
    lacks: tuple[str, ...]

    def as_facts(self) -> dict[str, object]:
        return {"source": self.source, "compressed": self.compressed, "file_bytes": self.file_bytes,
                "json_bytes": self.json_bytes, "browser": self.browser, "peer_connections": self.peer_connections,
                "candidates": self.candidates, "pairs": self.pairs, "first_time": self.first_time,
                "span_s": None if self.span_s is None else round(self.span_s, 3), "lacks": list(self.lacks)}


@dataclass(frozen=True, slots=True)
class DumpFacts:
    """Each peer connection of the dump as judged, and the one that mattered."""

    read: DumpRead
    mattered: str | None  # the key of the peer connection the verdict is about
    connections: tuple[dict[str, object], ...]  # per peer connection: key, result, states, candidates, pairs …

    def as_facts(self) -> dict[str, object]:
        return {"dump": self.read.as_facts(), "mattered": self.mattered, "peer_connections": list(self.connections)}


# --- watch ---------------------------------------------------------------------------------------


def iso_seconds(unix_s: float) -> str:
    """A wall-clock time as ISO 8601 UTC to the second."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Fault:
    change: str
    module: str
    target: str
    subject: str | None
    began_t_s: float
    ended_t_s: float | None  # None: still open when the watch ended
    detail: str

    def as_fact(self, base: float) -> dict[str, object]:
        return {"change": self.change, "module": self.module, "target": self.target, "subject": self.subject,
                "began_at": iso_seconds(base + self.began_t_s),
                "ended_at": None if self.ended_t_s is None else iso_seconds(base + self.ended_t_s),
                "duration_s": None if self.ended_t_s is None else round(self.ended_t_s - self.began_t_s, 3),
                "open": self.ended_t_s is None, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class TargetHistory:
    module: str
    target: str
    what: str
    probes: int
    ok: int
    last_ok: bool | None

    def as_fact(self) -> dict[str, object]:
        return {"module": self.module, "target": self.target, "what": self.what, "probes": self.probes,
                "ok": self.ok, "availability": round(self.ok / self.probes, 4) if self.probes else None,
                "last_ok": self.last_ok}


@dataclass(frozen=True, slots=True)
class WatchFacts:
    started_unix_s: float
    ended_t_s: float
    shard: str | None
    targets: tuple[TargetHistory, ...]
    faults: tuple[Fault, ...]
    news: tuple[Fault, ...]  # changes that are not faults (agent, limits, upgrade outcome), with ended_t_s = began
    dropped: int = 0  # ended faults and news left out, the oldest first, to keep a long watch's memory bounded

    def as_facts(self) -> dict[str, object]:
        base = self.started_unix_s
        return {"started_at": iso_seconds(base), "watched_s": round(self.ended_t_s, 3), "shard": self.shard,
                "targets": [t.as_fact() for t in self.targets],
                "faults": [f.as_fact(base) for f in self.faults],
                "open_faults": sum(1 for f in self.faults if f.ended_t_s is None),
                "news": [f.as_fact(base) for f in self.news], "dropped": self.dropped}


Details = (DialFacts | ListenFacts | RelayCheckFacts | LogFacts | ListenerLogFacts | SeveralFacts | DumpFacts
           | WatchFacts)
