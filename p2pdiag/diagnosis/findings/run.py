"""Findings about the run itself: a step that got no answer in its timeout, a run stopped early."""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.model import Finding, Severity


def step_timed_out(step: str, timeout_s: float) -> Finding:
    return Finding(
        code=Code.STEP_TIMEOUT,
        severity=Severity.ERROR,
        title=f"Step '{step}' got no answer within {timeout_s:g} s",
        evidence=(f"timeout {step}={timeout_s:g} s",),
        advice=f"A slow network may need more: --step-timeout {step}=SECONDS. A node that never "
        "answers is hung or is not the node you think it is.",
    )


def interrupted(reason: str, t_s: float) -> Finding:
    return Finding(
        code=Code.RUN_INTERRUPTED,
        severity=Severity.WARNING,
        title="The run was stopped before it finished" + (
            " (--timeout ran out)" if reason == "budget" else " (Ctrl-C or SIGTERM)"
        ),
        evidence=(f"stopped at t={t_s:.2f} s",),
        advice="The steps above are what happened until then. Run again with a larger --timeout to see the rest.",
    )
