"""What a diagnosis produces: steps (what happened) and findings (why, and what to do)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2pdiag.diagnosis.codes import Code
from p2pdiag.exitcodes import ExitCode

if TYPE_CHECKING:
    from p2pdiag.diagnosis.facts import Details, TraceNotes


class StepStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    WARNING = "warning"
    SKIPPED = "skipped"
    INFO = "info"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Confidence(enum.Enum):
    CERTAIN = "certain"  # observed directly
    LIKELY = "likely"  # inferred from timing or byte counts
    POSSIBLE = "possible"  # one of several explanations


class Outcome(enum.Enum):
    UPGRADED = "upgraded"
    RELAYED_ONLY = "relayed_only"
    UNREACHABLE = "unreachable"
    LISTENED = "listened"
    INTERRUPTED = "interrupted"
    RELAYS_OK = "relays_ok"  # relay-check: every relay passed (warnings allowed)
    RELAY_PROBLEM = "relay_problem"  # relay-check: a relay failed, or a listed relay could not be checked
    FLEET_OK = "fleet_ok"  # watch: no fault open at the end (faults that came and went are findings)
    FLEET_PROBLEM = "fleet_problem"  # watch: a fault was still open when the watch ended


OUTCOME_EXIT = {
    Outcome.UPGRADED: ExitCode.OK,
    Outcome.LISTENED: ExitCode.OK,
    Outcome.RELAYED_ONLY: ExitCode.RELAYED_ONLY,
    Outcome.UNREACHABLE: ExitCode.UNREACHABLE,
    Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
    Outcome.RELAYS_OK: ExitCode.OK,
    Outcome.RELAY_PROBLEM: ExitCode.RELAY_PROBLEM,
    Outcome.FLEET_OK: ExitCode.OK,
    Outcome.FLEET_PROBLEM: ExitCode.FLEET_PROBLEM,
}


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    title: str
    status: StepStatus
    detail: str
    t_s: float | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    code: Code  # stable; docs/verdicts/<code>.md explains it
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    advice: str
    confidence: Confidence = Confidence.CERTAIN
    settle: str | None = None  # what evidence would settle it, when not certain
    # machine-readable facts behind it, e.g. {"error_code": 401}; JSON values only
    data: dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.code, Code):
            raise TypeError(f"a finding's code is a Code, not {self.code!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    command: str
    outcome: Outcome
    headline: str
    steps: tuple[Step, ...]
    findings: tuple[Finding, ...]
    details: Details  # the command's typed facts (facts.py): what the lab and the renderers read
    notes: TraceNotes | None = None  # what the trace file itself said (cut short, unknown events)

    @property
    def exit_code(self) -> ExitCode:
        return OUTCOME_EXIT[self.outcome]

    @property
    def facts(self) -> dict[str, object]:
        """The typed facts as the --json `facts` object."""
        return {**self.details.as_facts(), **(self.notes.as_facts() if self.notes else {})}
