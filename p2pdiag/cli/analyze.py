"""`p2pdiag analyze`: a saved trace diagnosed offline, shown as the live run showed it; or a
js-libp2p debug log read into the same steps and finding codes."""

from __future__ import annotations

from pathlib import Path

import typer

from p2pdiag.cli import common

FormatOpt = typer.Option("auto", "--format", metavar="FORMAT",
                         help="What FILE is: auto (told from its content), trace or js-log.")


def analyze(
    trace_file: Path = typer.Argument(..., metavar="FILE", show_default=False,
                                      help="A trace written by --trace, or a js-libp2p debug log."),
    as_json: bool = common.JsonOpt,
    redact: bool = common.RedactOpt,
    fmt: str = FormatOpt,
) -> int:
    """Diagnose a saved trace offline (the same verdict the live run gave), or a js-libp2p debug log."""
    from p2pdiag import interrupts

    interrupts.release()  # nothing to record: Ctrl-C just stops
    from p2pdiag.errors import UsageError
    from p2pdiag.evidence.detect import Format, detect

    if fmt not in ("auto", *Format):
        raise UsageError(f"--format {fmt!r}: use auto, trace or js-log")
    kind = detect(trace_file) if fmt == "auto" else Format(fmt)
    redactor = common.redactor(redact)
    if kind is Format.JS_LOG:
        import dataclasses

        from p2pdiag.diagnosis.facts import TraceNotes
        from p2pdiag.diagnosis.jslog import diagnose_jslog
        from p2pdiag.evidence.jslog import load as load_log

        if redactor is None:
            return common.show(diagnose_jslog(load_log(trace_file)), as_json, None)
        verdict = diagnose_jslog(load_log(trace_file, redactor.text))  # every line redacted before it is read
        return common.show(dataclasses.replace(verdict, notes=TraceNotes(redacted=True)), as_json, None)
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.trace.file import load

    trace = load(trace_file)
    return common.show(diagnose(trace if redactor is None else redactor.trace(trace)), as_json, None)
