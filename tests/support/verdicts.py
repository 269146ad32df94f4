"""What every table test of recorded evidence asserts of a verdict, whatever the evidence was."""

from __future__ import annotations

from p2pdiag.diagnosis.model import Confidence, Outcome, Verdict


def assert_codes(verdict: Verdict, outcome: Outcome, present: set[str], absent: set[str]) -> None:
    """The outcome; the codes that must be there and those that must not; every finding with evidence and
    advice, and one that is not certain saying what would settle it."""
    codes = {f.code for f in verdict.findings}
    assert verdict.outcome is outcome
    assert present <= codes, codes
    assert not (absent & codes), codes
    assert all(f.evidence and f.advice for f in verdict.findings)
    assert all(f.settle for f in verdict.findings if f.confidence is not Confidence.CERTAIN)
