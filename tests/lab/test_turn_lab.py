"""A real refused TURN allocation: the lab's coturn, the wrong credential, and the STUN error code in the verdict.

`p2pdiag dial` in LAN a with `--ice-policy relay` and a wrong `--turn-credential`: coturn answers
the allocation with 401 twice (the challenge, then the refusal of the bad key), so there is no
candidate at all and the upgrade fails at gathering. The trace must carry the code coturn sent,
and turn-allocation-failed must carry it in its data. Needs root and `ip netns`; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from record.network import run_case

from p2pdiag.lab import Lab, Router, Topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="the lab needs root and ip netns")


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def test_wrong_turn_credential_gives_the_401_in_the_finding(tmp_path):
    Lab.cleanup_leftovers()
    with Lab(Topology(a=Router(nat="cone"), b=Router(nat="cone"))) as lab:
        dial_trace, _, dial = run_case(lab, "turn-bad-credential", tmp_path, "bad", "relay",
                                       extra=("--stun-timeout", "0.5"))
    assert dial.returncode == 3, dial.stderr  # reached only through the relay
    doc = json.loads(dial.stdout)
    (turn,) = [e for e in _events(dial_trace) if e["type"] == "webrtc.ice_server_queried"]
    assert (turn["server_kind"], turn["outcome"], turn["error_code"]) == ("turn", "error_response", 401)
    assert turn["duration_s"] < turn["bound_s"]  # refused, not waited out
    (finding,) = [f for f in doc["findings"] if f["code"] == "turn-allocation-failed"]
    assert finding["data"]["error_code"] == 401
    assert finding["confidence"] == "certain"
    assert not any(e["candidate_type"] == "relay" for e in _events(dial_trace)
                   if e["type"] == "webrtc.candidate_gathered")
