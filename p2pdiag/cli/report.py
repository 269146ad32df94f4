"""`p2pdiag report INPUT... -o report.html`: the verdicts of saved traces and js-libp2p logs, with
their timeline, as one self-contained HTML file a person can open from an email and print."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from p2pdiag.cli import analyze, common

if TYPE_CHECKING:
    from p2pdiag.diagnosis.model import Verdict
    from p2pdiag.diagnosis.several import Source
    from p2pdiag.render.html import InputReport

FormatOpt = typer.Option("auto", "--format", metavar="FORMAT",
                         help="What every INPUT is: auto (told from each one's content), trace, js-log or "
                         "webrtc-internals.")


def together(items: list[Source]) -> Verdict | None:
    """Of several inputs, the one verdict `analyze` gives of them all (several.combine); None for one."""
    if len(items) == 1:
        return None
    from p2pdiag.diagnosis.several import combine

    return combine(items)


def exit_code_of(items: list[Source]) -> int:
    """As `analyze` of the same inputs: one input's verdict's; of several, the dialing side's (several.py)."""
    verdict = together(items)
    return int((verdict or items[0].verdict).exit_code)


def _what_was_read(item: Source) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The input's kind, and what was read of it as (what, value) rows."""
    from p2pdiag.trace.file import Trace

    trace = item.evidence if isinstance(item.evidence, Trace) else None
    if trace is not None:
        h = trace.header
        rows = [("command", h.command), ("recorded", f"{h.started_at} by p2pdiag {h.p2pdiag_version}"),
                ("events read", str(len(trace.events)))]
        if h.libraries:
            rows.append(("libraries", ", ".join(f"{k} {v}" for k, v in sorted(h.libraries.items()))))
        if trace.skipped_unknown:
            rows.append(("events skipped", f"{trace.skipped_unknown} of types this p2pdiag does not know"))
        if trace.truncated:
            rows.append(("last line", "cut short (the run was killed while writing)"))
        rows.append(("redacted", "yes" if h.redacted else "no"))
        return f"p2pdiag trace ({h.command})", tuple(rows)
    read = getattr(item.verdict.details, "read", None)
    if read is None or not hasattr(read, "layout"):  # a dump, or a log read without LogRead: what is known
        return item.kind, ()
    span = "unknown" if read.span_s is None else f"{read.span_s:.3f} s"
    rows = [("layout", {"iso": "ISO times (Node without a TTY)", "colour": "colours and +Nms diffs"}.get(
                read.layout, read.layout)),
            ("lines", str(read.lines)),
            ("log records", f"{read.records}: {read.recognised} recognised, {read.unrecognised} not recognised"),
            ("other lines", f"{read.continuation} continuing a record, {read.foreign} of no js-libp2p record"),
            ("time span", f"{read.first_time or '?'} to {read.last_time or '?'} ({span})"),
            ("trace level", "yes" if read.trace_level else "no (enable libp2p:*,*:trace to see more)"),
            ("js-libp2p namespaces", read.namespaces)]
    if read.lacks:
        rows.append(("the log lacks", "; ".join(read.lacks)))
    return read.source, tuple(rows)


def build(names: list[str], items: list[Source]) -> list[InputReport]:
    from p2pdiag.evidence.jslog import JsLog
    from p2pdiag.render.html import InputReport
    from p2pdiag.render.timeline import Timeline, from_log, from_trace, wall_clock
    from p2pdiag.trace.file import Trace

    reports = []
    for name, item in zip(names, items, strict=True):
        kind, rows = _what_was_read(item)
        if isinstance(item.evidence, Trace):
            timeline = from_trace(item.evidence, item.verdict)
        elif isinstance(item.evidence, JsLog):
            timeline = from_log(item.evidence, item.verdict)
        else:  # a webrtc-internals dump: its verdict and steps are shown, its picture is not drawn yet
            timeline = Timeline(end_s=0.0, lanes=(), origin=wall_clock(getattr(item.evidence, "first_time", None)),
                                has_times=False, origin_source="a webrtc-internals dump (not drawn yet)")
        reports.append(InputReport(name, kind, rows, item.verdict, timeline))
    return reports


def placements(items: list[Source]) -> list[tuple[float | None, str]] | None:
    """Where several inputs sit on one timeline, as `analyze` places them (several.py): by wall clock,
    checked and corrected by the relayed connection seen from both sides."""
    if len(items) < 2:
        return None
    from p2pdiag.diagnosis.several import place

    return [(p.offset_s, p.how) for p in place(items)]


def write(path: Path, page: str) -> None:
    """The page written beside PATH, then moved onto it: a reader never sees half a report."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        part.write_text(page, encoding="utf-8")
        part.replace(path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        from p2pdiag.errors import UsageError

        raise UsageError(f"-o {path}: cannot write ({exc.strerror or exc})") from None


def report(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", show_default=False,
                                        help="Traces written by --trace and js-libp2p debug logs, in any mix."),
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE", help="The HTML file to write."),
    redact: bool = common.RedactOpt,
    fmt: str = FormatOpt,
) -> int:
    """Write one self-contained HTML report: each input's verdict, steps and findings, and one timeline."""
    from p2pdiag import interrupts

    interrupts.release()  # nothing to record: Ctrl-C just stops
    from p2pdiag.errors import UsageError
    from p2pdiag.evidence.detect import Format

    if fmt not in ("auto", *Format):
        raise UsageError(f"--format {fmt!r}: use auto, trace, js-log or webrtc-internals")
    if len(inputs) > analyze.MAX_INPUTS:
        raise UsageError(f"{len(inputs)} inputs: at most {analyze.MAX_INPUTS} go on one timeline")
    redactor = common.redactor(redact)  # one for every input: a peer gets the same placeholder in each
    items = [analyze.read_input(path, fmt, redactor) for path in inputs]
    from p2pdiag.render.html import render

    whole = together(items)
    code = int((whole or items[0].verdict).exit_code)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write(output, render(build([str(p) for p in inputs], items), now, code, placements(items), whole))
    for n, (path, item) in enumerate(zip(inputs, items, strict=True), start=1):
        v = item.verdict
        print(f"{n}. {path}: {v.outcome.value} (exit {int(v.exit_code)}): {v.headline}")
    print(f"Report written to {output}")
    sys.stdout.flush()
    return code
