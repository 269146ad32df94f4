"""p2pdiag dial and listen through a go-libp2p relay, to a js-libp2p Node listener, to a go-libp2p
peer (the relayed path only: go-libp2p has no private-to-private WebRTC) and to p2pdiag's own
listener; and the go relay's cuts seen from the dialer.

Measured here (go-libp2p v0.52.0): the duration cut comes at the announced whole seconds; the data
limit is counted in each direction alone, over every byte of the circuit (Noise and yamux framing
too): the cut came when p2pdiag had sent the limit while it had received much less
(test_a_go_relay_cuts_at_its_data_limit_in_one_direction). Both cuts reach p2pdiag's circuit as the
stream's end; p2pdiag's reader does not tell a reset from a close (the go relay resets both
streams at the duration deadline and closes the direction that reached the data limit).
"""

from __future__ import annotations

import json

import pytest
from support import codes, run_p2pdiag, step

pytestmark = pytest.mark.interop


def _finding(doc: dict, code: str) -> dict:
    found = [f for f in doc["findings"] if f["code"] == code]
    assert found, f"no {code} in {codes(doc)}"
    return found[0]


def test_dial_a_go_peer_through_a_go_relay(go_relay, go_peer):
    relay = go_relay()
    peer = go_peer(relay.addr("tcp"))
    assert peer.extra["webrtc"] is False and peer.extra["reservation"]["limit_duration_s"] == 120
    result, doc = run_p2pdiag("dial", peer.addrs[0], "--json")
    assert result.returncode == 3 and doc["outcome"] == "relayed_only", doc["findings"]
    assert doc["facts"]["peer_id"] == peer.peer_id
    assert "go-libp2p" in step(doc, "relay.identify")["detail"]
    assert step(doc, "hop.connect")["detail"] == "STATUS OK; limit: 2 min, 128 KiB"
    cid = doc["facts"]["connection_id"]
    assert step(doc, f"{cid}.ping")["status"] == "ok", doc["steps"]
    assert "WebRTC signaling not offered" in step(doc, f"{cid}.identify")["detail"]
    # the verdict says why there is no direct path, and that go-libp2p has none to offer
    no_signaling = _finding(doc, "peer-no-webrtc-signaling")
    assert "not /webrtc-signaling/0.0.1" in " ".join(no_signaling["evidence"])
    assert "go-libp2p has no private-to-private WebRTC" in no_signaling["advice"]
    assert "relay-limit-unit" not in codes(doc)


def test_dial_a_go_peer_by_peer_id_tries_the_upgrade_and_is_refused(go_relay, go_peer):
    relay = go_relay(no_ws=True)
    peer = go_peer(relay.addr("tcp"))
    result, doc = run_p2pdiag("dial", peer.peer_id, "--relay", relay.addr("tcp"), "--json")
    assert result.returncode == 3 and doc["outcome"] == "relayed_only"
    cid = doc["facts"]["connection_id"]
    assert step(doc, f"{cid}.ping")["status"] == "ok", doc["steps"]
    assert "WebRTC signaling not offered" in step(doc, f"{cid}.identify")["detail"]
    refused = _finding(doc, "webrtc-signaling-unsupported")
    assert "answered 'na' to /webrtc-signaling/0.0.1" in " ".join(refused["evidence"]), refused
    assert "refused the WebRTC signaling protocol" in doc["headline"]


def test_dial_a_js_listener_through_a_go_relay_upgrades_to_webrtc(go_relay, js_listener):
    relay = go_relay()
    listener = js_listener(relay.addr("tcp"))
    target = next(a for a in listener.addrs if "/p2p-circuit/webrtc/" in a)
    for _attempt in range(3):  # WebRTC between these peers is flaky now and then (interop/js/README.md)
        _result, doc = run_p2pdiag("dial", target, "--json")
        if doc["outcome"] == "upgraded":
            break
    assert doc["outcome"] == "upgraded", (doc["headline"], doc["findings"])
    assert "go-libp2p" in step(doc, "relay.identify")["detail"]
    assert "js-libp2p" in step(doc, f"{doc['facts']['connection_id']}.identify")["detail"]
    assert codes(doc) == ["relay-limited"], doc["findings"]  # seconds on the wire: no unit finding


def test_p2pdiag_listens_through_a_go_relay(go_relay, p2pdiag_listener):
    relay = go_relay()
    listener = p2pdiag_listener(relay.addr("ws"))
    assert all(a.startswith(relay.addr("ws")) for a in listener.addrs), listener.addrs
    _result, doc = run_p2pdiag("dial", listener.addrs[0], "--json")
    assert step(doc, "relay.connect")["detail"].startswith("ws,")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok", doc["steps"]


def test_a_go_relay_cuts_at_its_duration_limit(go_relay, go_peer):
    relay = go_relay(duration_ms=4000, no_ws=True)
    peer = go_peer(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", peer.addrs[0], "--json", "--hold", "10", "--ping-interval", "0.5")
    assert "relay-cut-duration" in codes(doc) and "relay-limit-unit" not in codes(doc), doc["findings"]
    assert "relay-cut-data" not in codes(doc)
    after = step(doc, f"{doc['facts']['connection_id']}.after")
    # the relay resets both streams at the cut (its log: "i/o deadline reached"); p2pdiag's own
    # connections tell that reset apart from a close, so the relay is named as the closer
    assert after["status"] == "failed" and "closed by the relay" in after["detail"], after
    assert "reset" in after["detail"], after
    cut = _finding(doc, "relay-cut-duration")
    assert "against a duration limit of 4 s" in " ".join(cut["evidence"]), cut


def test_a_go_relay_cuts_at_its_data_limit_in_one_direction(go_relay, go_peer, tmp_path):
    relay = go_relay(data_bytes=16384, no_ws=True)
    peer = go_peer(relay.addr("tcp"))
    trace = tmp_path / "dial.jsonl"
    _result, doc = run_p2pdiag("dial", peer.addrs[0], "--json", "--hold", "30", "--ping-interval", "0.05",
                               "--trace", str(trace))
    assert "relay-cut-data" in codes(doc) and "relay-cut-duration" not in codes(doc), doc["findings"]
    closed = [e for e in map(json.loads, trace.read_text().splitlines()) if e.get("type") == "circuit.closed"]
    assert len(closed) == 1 and closed[0]["closer"] == "remote", closed
    more, less = sorted((closed[0]["bytes_sent"], closed[0]["bytes_received"]), reverse=True)
    # one direction reached the limit; together they were well past it: go counts each direction alone
    assert 16384 <= more < 16384 + 1024 and less < 16384 and more + less > 16384 * 1.25, closed
