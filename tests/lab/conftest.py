"""Fixtures that build a real lab (p2pdiag.lab) for one test and always tear it down.

    def test_something(make_lab):
        lab = make_lab(a=Router(nat="symmetric"), b=Router(udp="blocked"))
        lab.exec("a", [...])

Tests here are skipped only when they cannot run at all: not root, or no ``ip netns``. A missing
coturn or nftables is a failure that says to run scripts/setup-lab.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from p2pdiag.lab import Lab, Router, Topology

# A UDP and TCP echo for each port given: answers every datagram and connection with the
# sender's address as it saw it ("ip:port"), so a test sees the router's mapping.
ECHO_SERVER = r"""
import socket, sys, threading
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(f"{addr[0]}:{addr[1]}".encode(), addr)
def tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen()
    while True:
        c, addr = s.accept()
        c.sendall(f"{addr[0]}:{addr[1]}".encode())
        c.close()
for port in map(int, sys.argv[1:]):
    threading.Thread(target=udp, args=(port,), daemon=True).start()
    threading.Thread(target=tcp, args=(port,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# Probes run at once, each "udp|tcp:IP:PORT[:SOURCE_PORT]"; prints one JSON object
# {probe: "ip:port" the echo saw, or "timeout" / an error name}.
PROBE = r"""
import json, socket, sys, threading
TIMEOUT_S = 1.0
out = {}
def probe(spec):
    proto, ip, port, *sport = spec.split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    s.settimeout(TIMEOUT_S)
    try:
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", int(sport[0])))
        if proto == "udp":
            s.sendto(b"hi", (ip, int(port)))
            out[spec] = s.recvfrom(2048)[0].decode()
        else:
            s.connect((ip, int(port)))
            out[spec] = s.recv(2048).decode()
    except socket.timeout:
        out[spec] = "timeout"
    except OSError as e:
        out[spec] = type(e).__name__
    finally:
        s.close()
threads = [threading.Thread(target=probe, args=(spec,)) for spec in sys.argv[1:]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"""


def _cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, veth, nftables)"
    if not shutil.which("ip"):
        return "`ip netns` is unavailable: iproute2 is not installed"
    try:
        done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns` is unavailable: {e}"
    if done.returncode != 0:
        return f"`ip netns` is unavailable: {done.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def lab_machine() -> None:
    """Skips when no lab can be built here; removes labs left by runs that died (not live ones)."""
    reason = _cannot_run()
    if reason:
        pytest.skip(reason)
    removed = Lab.cleanup_leftovers()
    if removed:
        print(f"removed leftover labs: {removed}", file=sys.stderr)


@pytest.fixture
def make_lab(lab_machine) -> Iterator[Callable[..., Lab]]:
    """``make_lab(topology)`` or ``make_lab(a=Router(...), b=Router(...))``: a lab that is up now
    and is torn down when the test ends, however it ends."""
    labs: list[Lab] = []

    def make(topology: Topology | None = None, **routers: Router) -> Lab:
        lab = Lab(topology or Topology(**routers))
        labs.append(lab)
        return lab.up()

    yield make
    errors = []
    for lab in labs:
        try:
            lab.down()
        except Exception as e:  # noqa: BLE001  (tear down the others, then report)
            errors.append(str(e))
    assert not errors, errors


@pytest.fixture
def lab(make_lab) -> Lab:
    """The default lab: both routers cone NATs, UDP open."""
    return make_lab()


@pytest.fixture
def echo_server() -> Callable[..., subprocess.Popen]:
    """``echo_server(lab, host, *ports)``: UDP+TCP echo servers in ``host``, ready when it returns."""

    def start(lab: Lab, host: str, *ports: int) -> subprocess.Popen:
        proc = lab.exec(host, [sys.executable, "-c", ECHO_SERVER, *map(str, ports)],
                        stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    return start


@pytest.fixture
def probe() -> Callable[..., dict[str, str]]:
    """``probe(lab, host, *specs)``: what the echo server saw for each ``udp|tcp:IP:PORT[:SPORT]``
    sent from ``host`` (all at once), or "timeout"."""

    def run(lab: Lab, host: str, *specs: str) -> dict[str, str]:
        done = lab.run(host, [sys.executable, "-c", PROBE, *specs], capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run
