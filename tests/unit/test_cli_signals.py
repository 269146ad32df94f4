"""Ctrl-C and SIGTERM at any moment of a run: exit 130, no traceback, and a trace that `analyze`
reads as interrupted (130). Real signals, sent to a real `p2pdiag` at several delays.

The delays count from the moment p2pdiag's own code runs (its handler for SIGTERM shows in
/proc/PID/status): before that the Python interpreter is still starting, and no program's code
can act on a signal there.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"

pytestmark = pytest.mark.slow


_SILENT: list[socket.socket] = []  # kept open for the whole session


def _silent_port() -> int:
    """A port that accepts TCP (the kernel's backlog) and never says a word: a dial to it waits out its
    step timeout, so every delay below lands while the dial runs (a dead port is refused at once, and
    a dial with no py-libp2p import is over within a second)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    _SILENT.append(s)
    return s.getsockname()[1]


def _dial_args() -> list[str]:
    return ["dial", f"/ip4/127.0.0.1/tcp/{_silent_port()}/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}"]


def _wait_for_p2pdiag(proc: subprocess.Popen) -> None:
    """Until p2pdiag has its signal handling in place (SIGTERM caught), or the process is gone."""
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up and proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            return
        caught = int(next(ln for ln in status.splitlines() if ln.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)


def _interrupt(args: list[str], trace: Path, delays: list[float], sig: int = signal.SIGINT) -> tuple[int, str]:
    """Run p2pdiag ARGS --trace TRACE, send SIG after each of DELAYS (the first counted from
    p2pdiag's start, each next from the one before); its exit code and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "p2pdiag", *args, "--trace", str(trace)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        _wait_for_p2pdiag(proc)
        for delay in delays:
            time.sleep(delay)
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def _assert_interrupted(code: int, err: str, trace: Path) -> None:
    assert code == 130, (code, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    analyzed = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", str(trace), "--json"],
                              capture_output=True, text=True, timeout=60, check=False)
    assert analyzed.returncode == 130, (analyzed.returncode, analyzed.stdout[-2000:], analyzed.stderr)
    assert '"code": "run-interrupted"' in analyzed.stdout


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0])
def test_ctrl_c_at_any_moment_of_a_dial(tmp_path, delay):
    trace = tmp_path / "t.jsonl"
    code, err = _interrupt(_dial_args(), trace, [delay])
    _assert_interrupted(code, err, trace)


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.5, 1.0])
def test_ctrl_c_at_any_moment_of_the_demo(tmp_path, delay):
    trace = tmp_path / "t.jsonl"
    code, err = _interrupt(["demo"], trace, [delay])
    _assert_interrupted(code, err, trace)


@pytest.mark.parametrize("delay", [0.05, 0.5])
def test_sigterm_is_an_interruption_too(tmp_path, delay):
    trace = tmp_path / "t.jsonl"
    code, err = _interrupt(_dial_args(), trace, [delay], signal.SIGTERM)
    _assert_interrupted(code, err, trace)


@pytest.mark.parametrize("delay", [0.02, 0.3, 1.0])
def test_a_second_ctrl_c_exits_at_once_with_a_usable_trace(tmp_path, delay):
    trace = tmp_path / "t.jsonl"
    code, err = _interrupt(["demo"], trace, [delay, 0.1])
    _assert_interrupted(code, err, trace)


@pytest.mark.parametrize("command", ["dial", "listen", "relay-check"])
def test_a_run_ends_within_its_timeout_and_a_second(tmp_path, command):
    """A relay that accepts the connection and never speaks: only --timeout ends the run. It counts
    from p2pdiag's start (here: its handler in place), py-libp2p's import included."""
    with socket.socket() as relay:
        relay.bind(("127.0.0.1", 0))
        relay.listen(8)
        addr = f"/ip4/127.0.0.1/tcp/{relay.getsockname()[1]}/p2p/{RELAY_ID}"
        args = {"dial": ["dial", f"{addr}/p2p-circuit/p2p/{PEER_ID}"], "listen": ["listen", "--relay", addr],
                "relay-check": ["relay-check", addr]}[command]
        timeout = 8.0  # more than the imports before the alarm take on a loaded machine
        proc = subprocess.Popen([sys.executable, "-m", "p2pdiag", *args, "--timeout", str(timeout), "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            _wait_for_p2pdiag(proc)
            started = time.monotonic()
            out, err = proc.communicate(timeout=60)
            took = time.monotonic() - started
        finally:
            proc.kill()
    assert "Traceback" not in err, err[-3000:]
    assert took <= timeout + 1.0, took
    doc = json.loads(out)
    if command == "dial":  # the others end at their own time: listen by its --timeout, relay-check per relay
        assert proc.returncode == 130 and doc["outcome"] == "interrupted", (proc.returncode, doc["headline"])
    else:
        assert proc.returncode == doc["exit_code"], (proc.returncode, doc["headline"])
