"""Helpers shared by the tests, the trace recorders and the benchmarks (fixtures live in conftest.py).

A package of its own, because several test folders have a conftest.py and `from conftest import`
would pick whichever was imported first. Its modules: relaycheck (relay-check's helpers),
relaycheck_fixtures and webrtc (fixtures the conftest files register), and the test-only peers and
runners started as scripts: scenario.py, responder_peer.py, reconnect_loop.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from p2pdiag.lab.proc import LineChild

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "interop" / "js"
READY_TIMEOUT_S = 30.0


class Proc(LineChild):
    """A child process whose stdout lines are read in the background; stdin EOF or SIGTERM ends it."""

    def __init__(self, args: list[str], name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        super().__init__(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env={**os.environ, **(env or {})}, cwd=ROOT))
        self.stderr: list[str] = []
        self.pump(self.popen.stderr, self.stderr)

    def wait_line(self, predicate, timeout: float = READY_TIMEOUT_S) -> str:
        line = self.next_line(predicate, timeout)
        if line is None:
            raise AssertionError(f"{self.name} gave no ready line in {timeout} s (exit {self.popen.poll()}); "
                                 f"stdout: {''.join(self.stdout)[-2000:]} stderr: {''.join(self.stderr)[-3000:]}")
        return line

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)


@dataclass
class Peer:
    peer_id: str
    addrs: list[str]
    proc: Proc | None = None
    extra: dict = field(default_factory=dict)

    def addr(self, transport: str = "tcp") -> str:
        for a in self.addrs:
            if transport == "ws" and "/ws/" in a and "p2p-circuit" not in a:
                return a
            if transport == "tcp" and "/ws" not in a and "p2p-circuit" not in a and "/tcp/" in a:
                return a
        raise AssertionError(f"no {transport} address in {self.addrs}")


def _ready_json(proc: Proc) -> dict:
    line = proc.wait_line(lambda s: s.strip().startswith("{") and '"ready"' in s)
    return json.loads(line)


def run_p2pdiag(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, dict | None]:
    result = subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    doc = None
    if "--json" in args:
        try:
            doc = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"--json output is not JSON: {result.stdout[-2000:]} "
                                 f"{result.stderr[-2000:]}") from None
    return result, doc


def codes(doc: dict) -> list[str]:
    return [f["code"] for f in doc["findings"]]


def step(doc: dict, key_suffix: str) -> dict:
    found = [s for s in doc["steps"] if s["key"].endswith(key_suffix)]
    assert found, f"no step {key_suffix} in {[s['key'] for s in doc['steps']]}"
    return found[0]
