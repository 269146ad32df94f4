"""Pure diagnosis: a trace in, a verdict out. No network, async or UI imports here."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from p2pdiag.diagnosis.facts import TraceNotes
from p2pdiag.diagnosis.model import Finding, Outcome, Severity, Step, StepStatus, Verdict
from p2pdiag.trace.events import Event
from p2pdiag.trace.file import Header, Trace


def diagnose(trace: Trace) -> Verdict:
    return _noted(_diagnose(trace), trace)


class ReadState(Protocol):
    """What a streamed read knows once its events are exhausted (trace.file.TraceStream)."""

    skipped_unknown: int
    truncated: bool


def diagnose_stream(header: Header, events: Iterable[Event], read: ReadState) -> tuple[Verdict, Trace]:
    """`diagnose` of the trace with HEADER and EVENTS (read once, as they come), the same verdict in
    memory bounded by what the verdict needs, not by the trace's length: a watch's history is built
    one event at a time, a dial's or listen's events are compacted (indexed.compact), others (relay-check:
    a trace as long as its relays) are kept whole. Returns the verdict and the trace it was judged
    from, with the events that are kept (several.py reads their header and TRACE_READS)."""
    command = header.command
    if command == "watch":
        from p2pdiag.diagnosis.several import TRACE_READS
        from p2pdiag.diagnosis.watch import History, verdict_of

        h = History()
        kept = []
        for e in events:
            h.add(e)
            if isinstance(e, TRACE_READS):
                kept.append(e)
        trace = Trace(header, tuple(kept), read.skipped_unknown, read.truncated)
        return _noted(verdict_of(h), trace), trace
    if command in ("dial", "demo", "listen"):
        from p2pdiag.diagnosis.indexed import compact

        trace = Trace(header, compact(events), read.skipped_unknown, read.truncated)
    else:
        trace = Trace(header, tuple(events), read.skipped_unknown, read.truncated)
    return diagnose(trace), trace


def _noted(verdict: Verdict, trace: Trace) -> Verdict:
    return dataclasses.replace(verdict, notes=TraceNotes(truncated=trace.truncated,
                                                         unknown_events=trace.skipped_unknown,
                                                         redacted=trace.header.redacted))


def _diagnose(trace: Trace) -> Verdict:
    command = trace.header.command
    if command in ("dial", "demo"):
        from p2pdiag.diagnosis.dial import diagnose_dial

        return diagnose_dial(trace)
    if command == "listen":
        from p2pdiag.diagnosis.listen import diagnose_listen

        return diagnose_listen(trace)
    if command == "relay-check":
        from p2pdiag.diagnosis.relaycheck import diagnose_relay_check

        return diagnose_relay_check(trace)
    if command == "watch":
        from p2pdiag.diagnosis.watch import diagnose_watch

        return diagnose_watch(trace)
    from p2pdiag.errors import TraceFileError

    raise TraceFileError(
        f"trace of command {command!r}: this p2pdiag can diagnose dial, demo, listen, relay-check and watch traces"
    )


__all__ = ["Finding", "Outcome", "Severity", "Step", "StepStatus", "Verdict", "diagnose", "diagnose_stream"]
