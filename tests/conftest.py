"""Real peers for the tests: py-libp2p and js-libp2p relays and listeners, run as subprocesses."""

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

import pytest

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


@pytest.fixture
def spawn():
    procs: list[Proc] = []

    def start(args: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        p = Proc(args, name, env)
        procs.append(p)
        return p

    yield start
    for p in reversed(procs):
        p.stop()


def _ready_json(proc: Proc) -> dict:
    line = proc.wait_line(lambda s: s.strip().startswith("{") and '"ready"' in s)
    return json.loads(line)


@pytest.fixture
def py_relay(spawn):
    """Start a py-libp2p relay (the library's CircuitV2Protocol) with the given limits."""

    def start(duration_s: int = 3600, data_bytes: int = 1 << 30, ws: bool = True, **extra) -> Peer:
        args = [sys.executable, "-m", "p2pdiag.peers.pyrelay", "--duration-s", str(duration_s),
                "--data-bytes", str(data_bytes)]
        if ws:
            args += ["--ws-port", "0"]
        for k, v in extra.items():
            args += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
        proc = spawn(args, "py relay")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc)

    return start


@pytest.fixture
def p2pdiag_listener(spawn, tmp_path):
    """`p2pdiag listen` as a user runs it: the addresses it prints are the ones to dial."""

    def start(*relays: str, extra: list[str] | None = None) -> Peer:
        trace = tmp_path / f"listen-{len(list(tmp_path.iterdir()))}.jsonl"
        args = [sys.executable, "-m", "p2pdiag", "listen", "--trace", str(trace)]
        for r in relays:
            args += ["--relay", r]
        proc = spawn(args + (extra or []), "p2pdiag listen")
        head = proc.wait_line(lambda s: s.startswith("Listening as ") or s.startswith("No relay"))
        assert head.startswith("Listening as "), head
        peer_id = head.split()[2].rstrip(".")
        addrs = []
        while len(addrs) < 2 * len(relays):
            addrs.append(proc.wait_line(lambda s: s.strip().startswith("/")).strip())
        return Peer(peer_id, addrs, proc, {"trace": trace})

    return start


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


@pytest.fixture(scope="session")
def node22() -> str:
    """The Node 22 binary from interop/js (installed by scripts/setup-js.sh, which the test command runs)."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"scripts/setup-js.sh failed: {result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def js_relay(spawn, node22):
    """A js-libp2p 3.x Circuit Relay v2 relay. Note: it announces Limit.duration in milliseconds."""

    def start(duration_ms: int | None = None, data_bytes: int | None = None, **extra) -> Peer:
        args = [node22, str(JS_DIR / "relay.mjs")]
        if duration_ms is not None:
            args += ["--duration-ms", str(duration_ms)]
        if data_bytes is not None:
            args += ["--data-bytes", str(data_bytes)]
        for k, v in extra.items():
            args += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
        proc = spawn(args, "js relay")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc, ready)

    return start


@pytest.fixture
def js_listener(spawn, node22):
    """A js-libp2p 3.x Node peer listening through a relay (circuit and, unless webrtc=False, /webrtc)."""

    def start(relay_addr: str, webrtc: bool = True) -> Peer:
        args = [node22, str(JS_DIR / "listener.mjs"), "--relay", relay_addr]
        if not webrtc:
            args.append("--no-webrtc")
        proc = spawn(args, "js listener")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc, ready)

    return start
