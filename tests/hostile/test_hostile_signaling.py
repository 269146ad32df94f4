"""Issue 10: a hostile WebRTC responder (tests/support/signaling_peer.py: p2pdiag's Listener behind a
real py relay) cannot make `dial` crash, hang or grow: endless ICE candidates after a real answer,
and a signaling message announced as 64 MiB."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support import Proc, _ready_json
from support.hostile import RSS_LIMIT_BYTES, run_measured

TIMEOUT_S = 8.0  # room for a real ICE exchange on a loaded machine
PEER = Path(__file__).resolve().parents[1] / "support" / "signaling_peer.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def relay():
    proc = Proc([sys.executable, "-m", "p2pdiag.peers.pyrelay"], "py relay")
    try:
        yield _ready_json(proc)["addrs"][0]
    finally:
        proc.stop()


@pytest.mark.parametrize(("mode", "allowed_exits"), [
    ("endless-candidates", (0, 3, 130)),  # the upgrade may even succeed: what matters is that it ends
    ("huge-answer", (3,)),  # the relayed connection works; the answer is refused at the 64 KiB cap
])
def test_dial_against_a_hostile_webrtc_responder(relay, tmp_path, mode, allowed_exits):
    peer = Proc([sys.executable, str(PEER), "--relay", relay, "--mode", mode], f"signaling peer {mode}")
    try:
        target = next(a for a in _ready_json(peer)["addrs"] if "/webrtc/" in a)
        m = run_measured("dial", target, "--timeout", str(TIMEOUT_S), trace=tmp_path / "dial.jsonl")
    finally:
        peer.stop()
    assert m.returncode in allowed_exits, m.describe()
    assert "Traceback" not in m.stderr and "internal error" not in m.stderr, m.describe()
    assert m.run_span_s() <= TIMEOUT_S + 1.0, f"the run took {m.run_span_s():.2f} s; {m.describe()}"
    assert m.peak_rss_bytes < RSS_LIMIT_BYTES, m.describe()
    assert len(m.events) < 2000, f"{len(m.events)} events: the trace grows with what the peer sends"
    if mode == "huge-answer":
        failed = [e for e in m.events if e["type"] == "webrtc.signaling_failed"]
        assert failed and failed[0]["error_kind"] == "malformed" and "65536" in failed[0]["error"], m.describe()
