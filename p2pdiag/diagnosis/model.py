"""What a diagnosis produces: steps (what happened) and findings (why, and what to do)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from p2pdiag.exitcodes import ExitCode


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


OUTCOME_EXIT = {
    Outcome.UPGRADED: ExitCode.OK,
    Outcome.LISTENED: ExitCode.OK,
    Outcome.RELAYED_ONLY: ExitCode.RELAYED_ONLY,
    Outcome.UNREACHABLE: ExitCode.UNREACHABLE,
    Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
    Outcome.RELAYS_OK: ExitCode.OK,
    Outcome.RELAY_PROBLEM: ExitCode.RELAY_PROBLEM,
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
    code: str  # stable; docs/verdicts/<code>.md explains it
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    advice: str
    confidence: Confidence = Confidence.CERTAIN
    settle: str | None = None  # what evidence would settle it, when not certain
    # machine-readable facts behind it, e.g. {"error_code": 401}; JSON values only
    data: dict[str, object] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    command: str
    outcome: Outcome
    headline: str
    steps: tuple[Step, ...]
    findings: tuple[Finding, ...]
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        return OUTCOME_EXIT[self.outcome]
