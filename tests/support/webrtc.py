"""Running the WebRTC scenarios (tests/support/scenario.py) with real peers, optionally in a network namespace."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from p2pdiag.diagnosis.upgrade import UpgradeStory, upgrade_story
from p2pdiag.trace.file import Trace, load

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenario.py"
ROOT = HERE.parents[1]

# A network of its own: only `lo`, so every address is 127.0.0.1; "udp-blocked" also drops every
# UDP packet (TCP, and so the relay, still works): ICE has nothing to get through. It drops on
# output, so the kernel refuses each send at once (EPERM), as a host firewall does; "udp-rejected"
# rejects there instead (EPERM too, with an ICMP error); "udp-dropped-in" drops on input, so every
# send leaves its socket and nothing arrives: what a firewall elsewhere on the path looks like.
_UDP_RULE = ("ip link set lo up && nft add table inet p2pdiag && "
             "nft add chain inet p2pdiag {chain} '{{ type filter hook {hook} priority 0; }}' && "
             "nft add rule inet p2pdiag {chain} meta l4proto udp {verdict}")
NETNS = {
    "loopback": "ip link set lo up",
    "udp-blocked": _UDP_RULE.format(chain="out", hook="output", verdict="drop"),
    "udp-rejected": _UDP_RULE.format(chain="out", hook="output", verdict="reject"),
    "udp-dropped-in": _UDP_RULE.format(chain="in", hook="input", verdict="drop"),
}


def netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("nft") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "sh", "-c", NETNS["udp-blocked"]], capture_output=True, timeout=10,
                           check=False)
    return probe.returncode == 0


@dataclass
class Run:
    rows: list[dict]
    summary: dict
    trace: Trace | None
    remote_trace: Trace | None
    stderr: str

    def story(self, relayed_connection_id: str = "relayed-1", remote: bool = False) -> UpgradeStory:
        trace = self.remote_trace if remote else self.trace
        assert trace is not None
        return upgrade_story(trace.events, relayed_connection_id)

    def kinds(self, remote: bool = False) -> list[str]:
        trace = self.remote_trace if remote else self.trace
        return [e.kind for e in trace.events] if trace else []


@pytest.fixture
def scenario(node22, tmp_path):
    """Run one scenario; `netns` puts it, relay and peers included, in a fresh network namespace."""

    def run(*args: str, netns: str | None = None, timeout: float = 90) -> Run:
        trace = tmp_path / f"trace-{len(list(tmp_path.iterdir()))}.jsonl"
        remote = trace.with_suffix(".remote.jsonl")
        argv = [sys.executable, str(SCENARIO), *args, "--trace", str(trace)]
        if args[0] == "initiator":
            argv += ["--remote-trace", str(remote)]
        if netns is not None:
            command = f"{NETNS[netns]} && exec {' '.join(shlex.quote(a) for a in argv)}"
            argv = ["unshare", "-n", "sh", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                                stdin=subprocess.DEVNULL, check=False)
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        if not lines or not lines[-1].get("done"):
            raise AssertionError(f"scenario {args} ended without a summary (exit {result.returncode}): "
                                 f"{result.stdout[-2000:]} {result.stderr[-3000:]}")
        remote_trace = None
        if remote.exists() and remote.stat().st_size:
            remote_trace = load(remote)
        if args[0] == "js-dialer":
            remote_trace, main_trace = load(trace), None
        else:
            main_trace = load(trace) if trace.exists() else None
        return Run(lines[:-1], lines[-1], main_trace, remote_trace, result.stderr)

    return run


@pytest.fixture(scope="session")
def netns() -> None:
    if not netns_available():
        pytest.skip("needs root, unshare -n and nft (a network namespace with a firewall)")
