"""Gathering with a STUN server when this host's firewall refuses UDP: each STUN request ends at its
refused send and retransmit (`send_refused`), not at the STUN bound; a drop elsewhere (on input) is
silence, and stays `no_answer`.

Each case runs `ice.bound_gathering` (real aioice, real sockets) in a network namespace of its own
(`unshare -n`, needs root and nft) with a veth address, since aioice gathers no loopback host
candidate: the STUN server is an address on it that nobody answers on.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
from support import ROOT
from support.webrtc import netns_available

VETH = ("ip link set lo up && ip link add v0 type veth peer name v1 && ip addr add 192.0.2.1/24 dev v0 && "
        "ip link set v0 up && ip link set v1 up && nft add table inet t && ")
RULES = {
    "refused": "nft add chain inet t out '{ type filter hook output priority 0; }' && "
               "nft add rule inet t out meta l4proto udp drop",
    "silent": "nft add chain inet t in '{ type filter hook input priority 0; }' && "
              "nft add rule inet t in meta l4proto udp drop",
}
SCRIPT = """
import asyncio, json
from aioice import Connection
from p2pdiag.webrtc import ice

queries, ended = [], []

async def main():
    ice.set_stun_retransmits(0.1, 3)
    conn = Connection(ice_controlling=True, use_ipv6=False)
    ice.restrict_host_addresses(conn, ("192.0.2.1",))
    ice.bound_gathering(conn, [ice.StunServer("stun:192.0.2.9:3478", "192.0.2.9", 3478)], None, 2.0, 3.0,
                        queries.append, lambda d, q: ended.append(d))
    await conn.get_component_candidates(component=1, addresses=["192.0.2.1"])
    await conn.close()

asyncio.run(main())
print(json.dumps([{"outcome": q.outcome, "send_refused": q.send_refused, "error": q.error, "local": q.local}
                  for q in queries]))
"""


def gather_in(rule: str) -> list[dict]:
    command = f"{VETH}{RULES[rule]} && exec {shlex.join([sys.executable, '-c', SCRIPT])}"
    done = subprocess.run(["unshare", "-n", "sh", "-c", command], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module", autouse=True)
def _needs_netns() -> None:
    if not netns_available():
        pytest.skip("needs root, unshare -n and nft (a network namespace with a firewall)")


def test_a_stun_request_this_host_refuses_to_send_ends_there():
    (query,) = gather_in("refused")
    assert query["local"][0] == "192.0.2.1"
    assert query["outcome"] == "failed" and query["send_refused"], query
    assert "Operation not permitted" in query["error"], query


def test_a_stun_request_dropped_elsewhere_is_no_answer():
    (query,) = gather_in("silent")
    assert query["outcome"] == "no_answer" and not query["send_refused"], query
