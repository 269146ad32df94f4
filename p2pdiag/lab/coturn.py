"""The lab's STUN/TURN server: Debian's coturn, run in the foreground inside the ``stun`` namespace.

Two listening addresses plus ``alt-listening-port`` turn on RFC 5780 NAT behaviour discovery
(OTHER-ADDRESS, CHANGE-REQUEST), which ``turnutils_natdiscovery`` uses to classify a router.
Debian's own /etc/turnserver.conf disables that (``no-rfc5780``); ``-c`` makes coturn read only
the lab's file. No systemd here, so the packaged service never runs: the lab owns the process.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path

from p2pdiag.lab import proc as procs
from p2pdiag.lab.topology import Topology

TURNSERVER = "turnserver"
READY_TIMEOUT_S = 10.0  # coturn is normally listening within ~0.1 s
STOP_TIMEOUT_S = 3.0


class CoturnError(Exception):
    """coturn did not start or stopped early; the message carries the end of its log."""


def config(topology: Topology, state_dir: Path) -> str:
    """turnserver.conf for the lab (pure)."""
    t = topology
    lo, hi = t.turn_relay_ports
    lines = [
        f"listening-ip={t.stun_ip}",
        f"listening-ip={t.stun_alt_ip}",
        f"listening-port={t.stun_port}",
        f"alt-listening-port={t.stun_alt_port}",
        f"relay-ip={t.stun_ip}",
        f"min-port={lo}",
        f"max-port={hi}",
        "no-tls",
        "no-dtls",
        "no-cli",
        "lt-cred-mech",
        f"user={t.turn_user}:{t.turn_password}",
        f"realm={t.turn_realm}",
        "fingerprint",
        "no-multicast-peers",
        "verbose",
        # keep every file inside the lab's state directory
        f"userdb={state_dir / 'turndb'}",
        f"pidfile={state_dir / 'turnserver.pid'}",
        "log-file=stdout",
        "simple-log",
    ]
    for cidr in t.turn_denied_peers:
        net = ipaddress.IPv4Network(cidr)
        # coturn 4.6 reads a range as "first-last"
        lines.append(f"denied-peer-ip={net.network_address}-{net.broadcast_address}")
    return "\n".join(lines) + "\n"


def listening_sockets(topology: Topology) -> set[str]:
    """The UDP sockets coturn must have open before the lab is ready (``ss`` local-address form)."""
    t = topology
    return {f"{ip}:{port}" for ip in (t.stun_ip, t.stun_alt_ip) for port in (t.stun_port, t.stun_alt_port)}


class Coturn:
    """One turnserver process. ``start`` returns when it listens on every STUN address and port."""

    def __init__(self, topology: Topology, namespace: str, state_dir: Path) -> None:
        self.topology = topology
        self.namespace = namespace
        self.state_dir = state_dir
        self.config_path = state_dir / "turnserver.conf"
        self.log_path = state_dir / "turnserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        self.config_path.write_text(config(self.topology, self.state_dir))
        with open(self.log_path, "wb") as log:
            # its own session: a Ctrl-C meant for the caller must not kill it before teardown does,
            # and a detached lab (`p2pdiag lab up`) keeps it after the caller exits
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, TURNSERVER, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        want = listening_sockets(self.topology)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise CoturnError(f"turnserver exited with status {self.process.returncode}; "
                                  f"log {self.log_path}: {self.log_tail()}")
            have = self.udp_sockets()
            if want <= have:
                return
            if time.monotonic() > deadline:
                raise CoturnError(f"turnserver not listening on {sorted(want - have)} after {timeout_s} s; "
                                  f"log {self.log_path}: {self.log_tail()}")
            time.sleep(0.02)

    def udp_sockets(self) -> set[str]:
        out = subprocess.run(["ss", "-N", self.namespace, "-Hlnu"], capture_output=True, text=True, check=False)
        return {line.split()[3] for line in out.stdout.splitlines() if len(line.split()) > 3}

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        proc, self.process = self.process, None
        procs.stop(proc, timeout_s)

    def log_tail(self, chars: int = 1500) -> str:
        return procs.log_tail(self.log_path, chars, missing="(no log)")
