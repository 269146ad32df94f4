"""`p2pdiag analyze`: a saved trace diagnosed offline, shown as the live run showed it; or a
js-libp2p debug log or a chrome://webrtc-internals dump read into the same steps and finding codes; or
several of them on one timeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from p2pdiag.cli import common

if TYPE_CHECKING:
    from p2pdiag.diagnosis.model import Verdict
    from p2pdiag.diagnosis.several import Source
    from p2pdiag.trace.redact import Redactor

FormatOpt = typer.Option("auto", "--format", metavar="FORMAT",
                         help="What each FILE is: auto (told from its content), trace, js-log or "
                         "webrtc-internals.")


def analyze(
    files: list[Path] = typer.Argument(..., metavar="FILE...", show_default=False,
                                       help="A trace written by --trace, a js-libp2p debug log or a "
                                       "chrome://webrtc-internals dump; several (the dialer's and the "
                                       "listener's) go on one timeline."),
    as_json: bool = common.JsonOpt,
    redact: bool = common.RedactOpt,
    fmt: str = FormatOpt,
) -> int:
    """Diagnose a saved trace offline (the same verdict the live run gave), a js-libp2p debug log or a
    chrome://webrtc-internals dump; several inputs give one verdict on one timeline."""
    from p2pdiag import interrupts

    interrupts.release()  # nothing to record: Ctrl-C just stops
    from p2pdiag.errors import UsageError
    from p2pdiag.evidence.detect import Format

    if fmt not in ("auto", *Format):
        raise UsageError(f"--format {fmt!r}: use auto, trace, js-log or webrtc-internals")
    if len(files) > MAX_INPUTS:
        raise UsageError(f"{len(files)} files: at most {MAX_INPUTS} go on one timeline")
    redactor = common.redactor(redact)  # one for every input: a peer gets the same placeholder in each
    if len(files) == 1:  # the verdict alone kept: the trace's events are freed before it is shown
        verdict = read_input(files[0], fmt, redactor, streamed=True).verdict
        return common.show(verdict, as_json, None)
    sources = [read_input(path, fmt, redactor, streamed=True) for path in files]
    from p2pdiag.diagnosis.several import combine

    return common.show(combine(sources), as_json, None)


MAX_INPUTS = 16


def read_input(path: Path, fmt: str, redactor: Redactor | None, streamed: bool = False) -> Source:
    """One input read and judged on its own (its format told from its content unless FMT names it),
    redacted as it is read when REDACTOR is given. STREAMED: a trace is read one event at a time and
    its Source keeps only the events its verdict needed (`analyze`); otherwise it keeps them all (the
    report draws them)."""
    from p2pdiag.diagnosis import several
    from p2pdiag.evidence.detect import Format, detect

    kind = detect(path) if fmt == "auto" else Format(fmt)
    if kind is Format.JS_LOG:
        from p2pdiag.diagnosis.jslog import diagnose_jslog
        from p2pdiag.evidence.jslog import load as load_log

        log = load_log(path, None if redactor is None else redactor.text)  # each line redacted before it is read
        verdict = diagnose_jslog(log)
        if redactor is not None:
            verdict = _noted_redacted(verdict)
        return several.from_log(str(path), log, verdict)
    if kind is Format.WEBRTC_INTERNALS:
        from p2pdiag.diagnosis.webrtc_internals import diagnose_dump
        from p2pdiag.evidence.webrtc_internals import load as load_dump

        dump = load_dump(path, None if redactor is None else redactor.text)  # every string redacted first
        verdict = diagnose_dump(dump)
        if redactor is not None:
            verdict = _noted_redacted(verdict)
        return several.from_dump(str(path), dump, verdict)
    if streamed:
        from p2pdiag.diagnosis import diagnose_stream
        from p2pdiag.trace.file import open_stream

        stream = open_stream(path)
        events = stream.events()
        header = stream.header
        if redactor is not None:  # the header, then each event in order: the placeholders of redact.trace
            header = redactor.header(header)
            events = map(redactor.event, events)
        verdict, trace = diagnose_stream(header, events, stream)
        return several.from_trace(str(path), trace, verdict)
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.trace.file import load

    trace = load(path)
    if redactor is not None:
        trace = redactor.trace(trace)
    return several.from_trace(str(path), trace, diagnose(trace))


def _noted_redacted(verdict: Verdict) -> Verdict:
    """A verdict read from redacted evidence says so, as a redacted trace's does."""
    import dataclasses

    from p2pdiag.diagnosis.facts import TraceNotes

    return dataclasses.replace(verdict, notes=TraceNotes(redacted=True))
