"""`p2pdiag analyze`: a saved trace diagnosed offline, shown as the live run showed it."""

from __future__ import annotations

from pathlib import Path

import typer

from p2pdiag.cli import common


def analyze(
    trace_file: Path = typer.Argument(..., metavar="TRACE", show_default=False, help="A trace written by --trace."),
    as_json: bool = common.JsonOpt,
    redact: bool = common.RedactOpt,
) -> int:
    """Diagnose a saved trace offline: the same verdict the live run gave."""
    from p2pdiag import interrupts

    interrupts.release()  # nothing to record: Ctrl-C just stops
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.trace.file import load

    trace = load(trace_file)
    redactor = common.redactor(redact)
    return common.show(diagnose(trace if redactor is None else redactor.trace(trace)), as_json, None)
