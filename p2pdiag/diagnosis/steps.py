"""Shared by the diagnoses: collecting steps and findings, their order, and how a Limit reads."""

from __future__ import annotations

import dataclasses

from p2pdiag.diagnosis.limits import DurationReading, fmt_bytes, fmt_seconds
from p2pdiag.diagnosis.model import Finding, Severity, Step, StepStatus
from p2pdiag.trace.events import Event

SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Builder:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.findings: list[Finding] = []

    def step(self, key: str, title: str, status: StepStatus, detail: str, e: Event | None = None,
             duration_s: float | None = None) -> None:
        self.steps.append(Step(key, title, status, detail, e.t_s if e else None, duration_s))

    def find(self, finding: Finding) -> None:
        """Add a finding; a second one with the same code adds its evidence to the first."""
        for n, known in enumerate(self.findings):
            if known.code == finding.code:
                extra = tuple(e for e in finding.evidence if e not in known.evidence)
                self.findings[n] = dataclasses.replace(known, evidence=known.evidence + extra)
                return
        self.findings.append(finding)


def short_peer_id(peer_id: str) -> str:
    """A peer id short enough for a headline or a step title: its first 8 and last 6 characters."""
    return peer_id if len(peer_id) <= 16 else f"{peer_id[:8]}…{peer_id[-6:]}"


def limit_text(reading: DurationReading, data: int | None) -> str:
    if reading.announced:
        d = f"{fmt_seconds(reading.effective_s or 0)}"
        if reading.suspect_unit:
            d = f"{reading.announced} announced, likely {d} (ms)"
    else:
        d = "no time limit"
    return f"{d}, {fmt_bytes(data) if data else 'no data limit'}"


def in_time_order(steps: list[Step]) -> list[Step]:
    """Stable sort by time; a step without a time stays after the one before it."""
    keyed = []
    t = 0.0
    for n, s in enumerate(steps):
        t = s.t_s if s.t_s is not None else t
        keyed.append((t - (s.duration_s or 0.0), n, s))
    return [s for _, _, s in sorted(keyed)]


def by_severity(findings: list[Finding] | tuple[Finding, ...]) -> list[Finding]:
    """Errors, then warnings, then information; stable within each."""
    return sorted(findings, key=lambda f: SEVERITY_RANK[f.severity])
