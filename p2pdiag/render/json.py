"""The `--json` document. schema_version changes only when a field changes meaning or goes away."""

from __future__ import annotations

import json
from typing import Any

from p2pdiag import __version__
from p2pdiag.diagnosis.model import Finding, Step, Verdict

SCHEMA_VERSION = 1


def _step(s: Step) -> dict[str, Any]:
    return {"key": s.key, "title": s.title, "status": s.status.value, "detail": s.detail,
            "t_s": s.t_s, "duration_s": s.duration_s}


def _finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity.value, "title": f.title, "evidence": list(f.evidence),
            "advice": f.advice, "confidence": f.confidence.value, "settle": f.settle, "data": dict(f.data),
            "docs": f"docs/verdicts/{f.code}.md"}


def verdict_document(verdict: Verdict, trace_file: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "p2pdiag_version": __version__,
        "command": verdict.command,
        "outcome": verdict.outcome.value,
        "exit_code": int(verdict.exit_code),
        "headline": verdict.headline,
        "steps": [_step(s) for s in verdict.steps],
        "findings": [_finding(f) for f in verdict.findings],
        "facts": verdict.facts,
        "trace_file": trace_file,
    }


def error_document(command: str, exit_code: int, message: str) -> dict[str, Any]:
    """What --json prints when no verdict could be made (bad input, a bug)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "p2pdiag_version": __version__,
        "command": command,
        "outcome": "error",
        "exit_code": exit_code,
        "headline": message,
        "steps": [],
        "findings": [],
        "facts": {},
        "trace_file": None,
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False)
