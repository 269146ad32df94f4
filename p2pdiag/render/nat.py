"""`p2pdiag nat`'s result: the judged NAT behaviour as text lines, or its `--json` document."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, TextIO

from p2pdiag.render.json import SCHEMA_VERSION

if TYPE_CHECKING:
    from p2pdiag.diagnosis.nat import NatBehaviour
    from p2pdiag.wire.stun import NatTest


def document(stun: list[str], verdict: NatBehaviour, tests: list[NatTest]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": "nat", "stun": stun,
            "mapping": verdict.mapping, "filtering": verdict.filtering,
            "public": list(verdict.public) if verdict.public else None,
            "evidence": list(verdict.evidence), "settle": verdict.settle,
            "tests": [dataclasses.asdict(t) for t in tests]}


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document)


def render(verdict: NatBehaviour, out: TextIO) -> None:
    print(f"Mapping:   {verdict.mapping}", file=out)
    print(f"Filtering: {verdict.filtering}", file=out)
    if verdict.public:
        print(f"Public address (test I): {verdict.public[0]}:{verdict.public[1]}", file=out)
    for line in verdict.evidence:
        print(f"  evidence: {line}", file=out)
    if verdict.settle:
        print(f"  to tell more: {verdict.settle}", file=out)
