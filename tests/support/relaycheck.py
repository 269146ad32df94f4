"""Helpers for relay-check's tests: run the command, find a relay's row, a port nothing listens on."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELAY_CHECK = [sys.executable, "-m", "p2pdiag", "relay-check"]
SOME_PEER = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"


def run_relay_check(*args: str, timeout: float = 90) -> tuple[subprocess.CompletedProcess, dict]:
    """Run relay-check with --json; the document must parse, and stderr hold no traceback, whatever happened."""
    result = subprocess.run([*RELAY_CHECK, *args, "--json"], capture_output=True, text=True, timeout=timeout,
                            cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"--json output is not JSON: {result.stdout[-2000:]} {result.stderr[-2000:]}") from None
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result, doc


def dead_addr() -> str:
    """A relay address on a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/{SOME_PEER}"


def relay_row(doc: dict, label: str = "r1") -> dict:
    return next(r for r in doc["facts"]["relays"] if r["label"] == label)


def relay_codes(doc: dict, label: str = "r1") -> list[str]:
    return relay_row(doc, label)["finding_codes"]
