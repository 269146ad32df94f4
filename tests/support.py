"""Helpers shared by the tests, the trace recorders and the benchmarks (fixtures live in conftest.py).

A module of its own, because several test folders have a conftest.py and `from conftest import`
would pick whichever was imported first.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "interop" / "js"
READY_TIMEOUT_S = 30.0


class Proc:
    """A child process whose stdout lines are read in the background; stdin EOF or SIGTERM ends it."""

    def __init__(self, args: list[str], name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.popen = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.popen.stdout, self.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.popen.stderr, self.stderr, False), daemon=True).start()

    def _pump(self, stream, sink: list[str], enqueue: bool) -> None:
        for line in stream:
            sink.append(line)
            if enqueue:
                self.lines.put(line)

    def wait_line(self, predicate, timeout: float = READY_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    break
                continue
            if predicate(line):
                return line
        raise AssertionError(f"{self.name} gave no ready line in {timeout} s (exit {self.popen.poll()}); "
                             f"stdout: {''.join(self.stdout)[-2000:]} stderr: {''.join(self.stderr)[-3000:]}")

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        for s in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            try:
                s.close()
            except Exception:
                pass


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
                            timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)
    doc = None
    if "--json" in args:
        try:
            doc = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"--json output is not JSON: {result.stdout[-2000:]} {result.stderr[-2000:]}")
    return result, doc


def codes(doc: dict) -> list[str]:
    return [f["code"] for f in doc["findings"]]


def step(doc: dict, key_suffix: str) -> dict:
    found = [s for s in doc["steps"] if s["key"].endswith(key_suffix)]
    assert found, f"no step {key_suffix} in {[s['key'] for s in doc['steps']]}"
    return found[0]
