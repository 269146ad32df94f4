"""Pure diagnosis: a trace in, a verdict out. No network, async or UI imports here."""

from __future__ import annotations

import dataclasses

from p2pdiag.diagnosis.facts import TraceNotes
from p2pdiag.diagnosis.model import Finding, Outcome, Severity, Step, StepStatus, Verdict
from p2pdiag.trace.file import Trace


def diagnose(trace: Trace) -> Verdict:
    verdict = _diagnose(trace)
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


__all__ = ["Finding", "Outcome", "Severity", "Step", "StepStatus", "Verdict", "diagnose"]
