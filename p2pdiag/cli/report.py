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
    from p2pdiag.cli.analyze import Input
    from p2pdiag.render.html import InputReport

FormatOpt = typer.Option("auto", "--format", metavar="FORMAT",
                         help="What every INPUT is: auto (told from each one's content), trace or js-log.")
# Several inputs: the exit code is the most severe of their verdicts', in this order (exit-codes.md).
SEVERITY_ORDER = (4, 5, 3, 130, 0)


def exit_code_of(codes: list[int]) -> int:
    """One input: its verdict's exit code, as `analyze` gives. Several: the most severe of theirs."""
    return min(codes, key=lambda c: SEVERITY_ORDER.index(c) if c in SEVERITY_ORDER else -1)


def _what_was_read(item: Input) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The input's kind, and what was read of it as (what, value) rows."""
    if item.trace is not None:
        h = item.trace.header
        rows = [("command", h.command), ("recorded", f"{h.started_at} by p2pdiag {h.p2pdiag_version}"),
                ("events read", str(len(item.trace.events)))]
        if h.libraries:
            rows.append(("libraries", ", ".join(f"{k} {v}" for k, v in sorted(h.libraries.items()))))
        if item.trace.skipped_unknown:
            rows.append(("events skipped", f"{item.trace.skipped_unknown} of types this p2pdiag does not know"))
        if item.trace.truncated:
            rows.append(("last line", "cut short (the run was killed while writing)"))
        rows.append(("redacted", "yes" if h.redacted else "no"))
        return f"p2pdiag trace ({h.command})", tuple(rows)
    read = getattr(item.verdict.details, "read", None)
    if read is None:  # a log this p2pdiag diagnoses without LogFacts: say what little is known
        return "js-libp2p debug log", ()
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


def build(names: list[str], items: list[Input]) -> list[InputReport]:
    from p2pdiag.render.html import InputReport
    from p2pdiag.render.timeline import from_log, from_trace

    reports = []
    for name, item in zip(names, items, strict=True):
        kind, rows = _what_was_read(item)
        if item.trace is not None:
            timeline = from_trace(item.trace, item.verdict)
        else:
            assert item.log is not None
            timeline = from_log(item.log, item.verdict)
        reports.append(InputReport(name, kind, rows, item.verdict, timeline))
    return reports


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
    items = [analyze.read_input(path, fmt, redact) for path in inputs]
    from p2pdiag.render.html import render

    code = exit_code_of([int(i.verdict.exit_code) for i in items])
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write(output, render(build([str(p) for p in inputs], items), now, code))
    for n, (path, item) in enumerate(zip(inputs, items, strict=True), start=1):
        v = item.verdict
        print(f"{n}. {path}: {v.outcome.value} (exit {int(v.exit_code)}): {v.headline}")
    print(f"Report written to {output}")
    sys.stdout.flush()
    return code
