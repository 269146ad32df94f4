"""relay-check's fixtures, registered by tests/conftest.py. (Helpers the tests import live in
support/relaycheck.py.)"""

from __future__ import annotations

import json
import sys

import pytest


@pytest.fixture
def bad_relay(spawn):
    """A relay that misbehaves one way (python -m p2pdiag.peers.badrelay --mode MODE): its address."""

    def start(mode: str) -> str:
        proc = spawn([sys.executable, "-m", "p2pdiag.peers.badrelay", "--mode", mode], f"bad relay {mode}")
        ready = json.loads(proc.wait_line(lambda s: '"ready"' in s))
        return ready["addrs"][0]

    return start
