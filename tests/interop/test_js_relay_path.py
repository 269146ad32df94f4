"""p2pdiag dial against js-libp2p 3.x: a js relay, a js Node listener, and mixed py/js setups."""

from __future__ import annotations

import pytest
from support import codes, run_p2pdiag, step

pytestmark = pytest.mark.interop


def test_dial_js_listener_through_js_relay_by_multiaddr(js_relay, js_listener):
    relay = js_relay()
    listener = js_listener(relay.addr("tcp"))
    circuit = next(a for a in listener.addrs if "/webrtc/" not in a and "/ws/" not in a)
    _result, doc = run_p2pdiag("dial", circuit, "--json")
    assert doc["facts"]["peer_id"] == listener.peer_id
    assert step(doc, "relay.connect")["status"] == "ok"
    assert "js-libp2p" in step(doc, "relay.identify")["detail"]
    assert step(doc, "circuit.secure")["status"] == "ok"
    cid = doc["facts"]["connection_id"]
    assert step(doc, f"{cid}.ping")["status"] == "ok", doc["steps"]
    assert "WebRTC signaling offered" in step(doc, f"{cid}.identify")["detail"]
    # the js relay announces 120000 for its two-minute limit: a unit finding, with the likely real value
    assert "relay-limit-unit" in codes(doc)
    unit = next(f for f in doc["findings"] if f["code"] == "relay-limit-unit")
    assert "2 min" in unit["advice"]


def test_dial_js_listener_by_peer_id_over_websocket(js_relay, js_listener):
    relay = js_relay()
    listener = js_listener(relay.addr("ws"))
    _result, doc = run_p2pdiag("dial", listener.peer_id, "--relay", relay.addr("ws"), "--json")
    assert step(doc, "target")["detail"].startswith("by peer id")
    assert step(doc, "relay.connect")["detail"].startswith("ws,")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok", doc["steps"]


def test_dial_js_listener_through_py_relay(py_relay, js_listener):
    relay = py_relay()
    listener = js_listener(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", listener.peer_id, "--relay", relay.addr("tcp"), "--json")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok", doc["steps"]
    assert "relay-limit-unit" not in codes(doc)  # py relays announce seconds


def test_p2pdiag_listener_through_js_relay(js_relay, p2pdiag_listener):
    relay = js_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", listener.addrs[0], "--json")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok", doc["steps"]


def test_js_relay_duration_cut_matches_the_millisecond_reading(js_relay, js_listener):
    relay = js_relay(duration_ms=4000)
    listener = js_listener(relay.addr("tcp"))
    circuit = next(a for a in listener.addrs if "/webrtc/" not in a and "/ws/" not in a)
    _result, doc = run_p2pdiag("dial", circuit, "--json", "--hold", "12", "--ping-interval", "0.5")
    assert "relay-limit-unit" in codes(doc)
    assert "relay-cut-duration" in codes(doc), doc["findings"]
    after = step(doc, f"{doc['facts']['connection_id']}.after")
    assert after["status"] == "failed"


def test_js_relay_data_cut(js_relay, js_listener):
    relay = js_relay(data_bytes=16384)
    listener = js_listener(relay.addr("tcp"))
    circuit = next(a for a in listener.addrs if "/webrtc/" not in a and "/ws/" not in a)
    _result, doc = run_p2pdiag("dial", circuit, "--json", "--hold", "30", "--ping-interval", "0.05")
    assert "relay-cut-data" in codes(doc), doc["findings"]


def test_js_listener_without_webrtc_is_named(js_relay, js_listener):
    relay = js_relay()
    listener = js_listener(relay.addr("tcp"), webrtc=False)
    circuit = next(a for a in listener.addrs if "/ws/" not in a)
    _result, doc = run_p2pdiag("dial", circuit, "--json")
    assert "peer-no-webrtc-signaling" in codes(doc)
