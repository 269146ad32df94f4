"""The go-libp2p reference peers (interop/go) as fixtures: a Circuit Relay v2 relay and a peer that
listens through a relay (tests/interop/conftest.py registers them by importing them).

`scripts/setup-go.sh` builds both binaries once into a cache keyed on interop/go's go.sum, go.mod
and sources (the test command runs it first; here it only finds them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support import ROOT, Peer, _ready_json


@pytest.fixture(scope="session")
def go_bin() -> Path:
    """The directory holding the `relay` and `peer` binaries."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup-go.sh")], capture_output=True, text=True,
                            timeout=1200, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise AssertionError(f"scripts/setup-go.sh failed: {result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _flags(extra: dict) -> list[str]:
    args: list[str] = []
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return args


@pytest.fixture
def go_relay(spawn, go_bin):
    """A go-libp2p relay (go-libp2p's relay service, its defaults unless flags say otherwise: e.g.
    duration_ms=4000, data_bytes=16384, reservation_ttl_ms=..., max_reservations=..., no_ws=True,
    reservation_addrs="all"). `extra` is its ready line (limits, TTL, slots, version)."""

    def start(**flags) -> Peer:
        proc = spawn([str(go_bin / "relay"), *_flags(flags)], "go relay")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc, ready)

    return start


@pytest.fixture
def go_peer(spawn, go_bin):
    """A go-libp2p peer with a reservation on `relay_addr`, answering ping and identify (no WebRTC:
    go-libp2p has no private-to-private WebRTC). `addrs` are its /p2p-circuit addresses."""

    def start(relay_addr: str, **flags) -> Peer:
        proc = spawn([str(go_bin / "peer"), "--relay", relay_addr, *_flags(flags)], "go peer")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc, ready)

    return start
