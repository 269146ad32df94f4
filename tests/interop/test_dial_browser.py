"""`p2pdiag dial` → a js-libp2p peer in headless Chromium, listening through the js relay over WebSocket:
upgraded.

Chromium gathers no 127.0.0.1 candidate. By default it hides its host addresses behind mDNS names
(`<uuid>.local`), which takes multicast on the machine's network to resolve; browser-peer.mjs turns
that off (--disable-features=WebRtcHideLocalIpsWithMdns), so Chromium offers this machine's own
addresses and everything stays on this machine. (p2pdiag resolves Chromium's mDNS answers too:
tests/unit/test_mdns_chromium.py covers that without the network.)

One dial, no retry: in a loop of dials here p2pdiag → Chromium upgraded 100 times of 100 (median ~130 ms
from the upgrade's start to the WebRTC connection), unlike js Node → Chromium, where Chromium's DTLS
fails about 1 dial in 10 (interop/js/browser/README.md). A failure here is a finding, not noise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json

import pytest
from support import codes, run_p2pdiag, step

from p2pdiag.trace.events import (
    CandidatePairSelected,
    CandidateType,
    Path,
    PingCompleted,
    RemoteCandidateReceived,
    WebRTCUpgradeSucceeded,
)
from p2pdiag.trace.file import load

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(60)]


def _page_events(lines: list[str]) -> list[dict]:
    """The browser peer's ICE, DTLS and state log lines (its stderr)."""
    wanted = ("ice_", "webrtc_state", "dtls_error", "page_error", "fatal")
    out = []
    for line in lines:
        if line.startswith("{") and any(f'"event":"{w}' in line for w in wanted):
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def test_dial_browser_peer_upgrades(js_relay, browser_peer, tmp_path, record_property):
    relay_ws = js_relay().addr("ws")
    browser = browser_peer(relay_ws)
    target = f"{relay_ws}/p2p-circuit/webrtc/p2p/{browser.peer_id}"
    assert target in browser.addrs, browser.addrs

    trace = tmp_path / "dial.jsonl"
    result, doc = run_p2pdiag("dial", target, "--json", "--trace", str(trace), "--timeout", "30", timeout=45)
    events = load(trace).events
    remote = [e for e in events if isinstance(e, RemoteCandidateReceived)]
    selected = next((e for e in events if isinstance(e, CandidatePairSelected)), None)
    report = {
        "browser": browser.extra.get("browser"),
        "outcome": doc["outcome"],
        "findings": [{k: f[k] for k in ("code", "title", "evidence")} for f in doc["findings"]],
        "webrtc_steps": [f"{s['key']} {s['status']}: {s['detail']}" for s in doc["steps"]
                         if s["key"].startswith("webrtc-")],
        "remote_candidates": [f"{_endpoint(c.address, c.port)} {c.candidate_type.value} resolved={c.mdns_resolved} "
                              f"-> {c.resolved_address} accepted={c.accepted} {c.note or ''}".strip() for c in remote],
        "selected_pair": None if selected is None else
        f"{_endpoint(selected.local_address, selected.local_port)} ({selected.local_type.value}) -> "
        f"{_endpoint(selected.remote_address, selected.remote_port)} ({selected.remote_type.value})",
        "page": _page_events(browser.proc.stderr)[-12:],
    }
    record_property("dial_browser_report", json.dumps(report))
    print("\ndial → browser peer:", json.dumps(report, indent=1))

    assert doc["outcome"] == "upgraded" and result.returncode == 0, report
    assert "webrtc-" not in " ".join(codes(doc)), report  # no WebRTC finding on a run that upgraded
    assert step(doc, "webrtc-1.upgrade")["status"] == "ok"
    webrtc_ping = step(doc, "webrtc-1.ping")
    assert webrtc_ping["status"] == "ok", webrtc_ping
    assert [e for e in events if isinstance(e, PingCompleted) and e.path is Path.WEBRTC]

    # the relayed connection is still checked after the upgrade, and is alive
    upgraded = next(e for e in events if isinstance(e, WebRTCUpgradeSucceeded))
    assert upgraded.relayed_connection_id == "relayed-1"
    after = step(doc, "relayed-1.after")
    assert after["status"] == "ok" and after["t_s"] > upgraded.t_s, after
    assert [e for e in events if isinstance(e, PingCompleted) and e.path is Path.RELAYED
            and e.connection_id == "relayed-1" and e.t_s > upgraded.t_s]

    # what Chromium offered: host candidates on this machine's own addresses (browser-peer.mjs turns
    # off mDNS names, so nothing is multicast on the machine's network)
    assert remote, "no remote candidate in the trace: Chromium trickles its candidates after the answer"
    for c in remote:
        assert not c.mdns and c.candidate_type is CandidateType.HOST, c
        assert ipaddress.ip_address(c.address), c
    # the pair: one of p2pdiag's host candidates to Chromium's, learned from its check or its resolved name
    assert selected is not None
    assert selected.local_type is CandidateType.HOST
    assert selected.remote_type in (CandidateType.HOST, CandidateType.PRFLX), selected
