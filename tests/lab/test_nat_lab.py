"""`p2pdiag nat` against the lab's coturn (two IPs + alt port: RFC 5780), through each router mode.

The expected answers are those of coturn's own RFC 5780 client in docs/lab.md. Needs root and
`ip netns`; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from p2pdiag.lab import Lab, Router, Topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="the lab needs root and ip netns")

# router, mapping, filtering, exit code
MODES = [
    (Router(nat="cone"), "endpoint-independent", "address-and-port-dependent", 0),
    (Router(nat="symmetric"), "address-and-port-dependent", "address-and-port-dependent", 0),
    (Router(nat="full-cone"), "endpoint-independent", "endpoint-independent", 0),
    (Router(nat="cone", filtering="address-dependent"), "endpoint-independent", "address-dependent", 0),
    (Router(nat="cone", udp="blocked"), "no answer (UDP blocked, or the server is down)",
     "no answer (UDP blocked, or the server is down)", 4),
]


@pytest.fixture(scope="module")
def lab():
    Lab.cleanup_leftovers()
    with Lab(Topology(a=Router(nat="cone"))) as lab:
        yield lab


@pytest.mark.parametrize(("router", "mapping", "filtering", "code"), MODES,
                         ids=["cone", "symmetric", "full-cone", "address-dependent-filter", "udp-blocked"])
def test_nat_probe_through_each_router(lab, router, mapping, filtering, code):
    lab.set_router("a", router)
    out = lab.run("a", [sys.executable, "-m", "p2pdiag", "nat", "--json", "--stun", lab.stun_url],
                  capture_output=True, text=True, timeout=30)
    assert out.returncode == code, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["mapping"], doc["filtering"]) == (mapping, filtering), doc["evidence"]
    if code == 0:
        assert doc["public"][0] == lab.address("router-a")

