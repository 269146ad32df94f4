"""The js-libp2p peer in headless Chromium (interop/js/browser-peer.mjs), for the interop tests."""

from __future__ import annotations

import subprocess

import pytest
from support import JS_DIR, ROOT, Peer, _ready_json
from support.gopeers import go_bin, go_peer, go_relay  # noqa: F401  (fixtures: registered by importing them here)
from support.watch import FLEET_TOPIC
from support.webrtc import netns, scenario  # noqa: F401  (fixtures: registered by importing them here)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium: scripts/setup-chromium.sh prints its path (installing it first, as root, if
    missing); the test is skipped only when that cannot be done."""
    try:
        setup = subprocess.run(["bash", str(ROOT / "scripts" / "setup-chromium.sh")], check=False, capture_output=True,
                               text=True, timeout=600, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.skip("no chromium: scripts/setup-chromium.sh ran for more than 600 s")
    if setup.returncode != 0:
        pytest.skip(f"no chromium: {setup.stderr.strip()[-500:]}")
    return setup.stdout.split()[-1]


@pytest.fixture
def browser_peer(spawn, node22, chromium):
    """A js-libp2p peer in headless Chromium, listening through a relay it reaches over WebSocket.

    `start(relay_ws)` returns it once it has its reservation; `extra` is its ready line (addrs,
    browser, timings) and its stderr (the page's ICE and DTLS log lines) is `proc.stderr`.
    """

    def start(relay_ws: str, *flags: str) -> Peer:
        proc = spawn([node22, str(JS_DIR / "browser-peer.mjs"), "--relay", relay_ws, "--chromium", chromium,
                      *flags], "browser peer")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc, ready)

    return start


@pytest.fixture
def fleet_node(spawn, node22):
    """A js-libp2p fleet node (interop/js/fleet-node.mjs) on FLEET_TOPIC; support.watch.control(peer, cmd)
    sends it one command (faults a, b and d; status)."""

    def start(*flags: str) -> Peer:
        proc = spawn([node22, str(JS_DIR / "fleet-node.mjs"), "--topic", FLEET_TOPIC, "--heartbeat-ms", "500",
                      *flags], "fleet node")
        ready = _ready_json(proc)
        return Peer(ready["peer_id"], ready["addrs"], proc, ready)

    return start
