"""Real peers for the tests: py-libp2p and js-libp2p relays and listeners, run as subprocesses."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import JS_DIR, ROOT, Peer, Proc, _ready_json
from support.relaycheck_fixtures import bad_relay  # noqa: F401  (a fixture: registered by importing it here)


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
        head = proc.wait_line(lambda s: s.startswith(("Listening as ", "No relay")))
        assert head.startswith("Listening as "), head
        peer_id = head.split()[2].rstrip(".")
        addrs = []
        while len(addrs) < 2 * len(relays):
            addrs.append(proc.wait_line(lambda s: s.strip().startswith("/")).strip())
        return Peer(peer_id, addrs, proc, {"trace": trace})

    return start


@pytest.fixture(scope="session")
def node22() -> str:
    """The Node 22 binary from interop/js (installed by scripts/setup-js.sh, which the test command runs)."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                            timeout=600, check=False)
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
