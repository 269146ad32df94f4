"""p2pdiag against a real py-libp2p relay (the library's CircuitV2Protocol) and `p2pdiag listen`."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time

from support import codes, run_p2pdiag, step


def test_dial_by_multiaddr_and_ping_over_that_relayed_connection(py_relay, p2pdiag_listener, tmp_path):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))
    circuit = next(a for a in listener.addrs if "/webrtc/" not in a)
    trace = tmp_path / "dial.jsonl"
    result, doc = run_p2pdiag("dial", circuit, "--json", "--trace", str(trace))
    assert result.returncode == 3, result.stderr  # relayed only: no upgrade in this build
    assert doc["outcome"] == "relayed_only"
    assert step(doc, "relay.connect")["status"] == "ok"
    assert "HOP offered" in step(doc, "relay.identify")["detail"]
    assert "STATUS OK" in step(doc, "hop.connect")["detail"]
    assert step(doc, "circuit.secure")["status"] == "ok"
    cid = doc["facts"]["connection_id"]
    assert step(doc, f"{cid}.ping")["status"] == "ok"
    assert step(doc, f"{cid}.after")["status"] == "ok"
    assert doc["facts"]["peer_id"] == listener.peer_id
    # the ping is recorded on the relayed connection object, not any other path to the peer
    events = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    pings = [e for e in events if e["type"] == "ping.completed"]
    assert pings and all(p["connection_id"] == cid and p["path"] == "relayed" for p in pings)

    # the listener saw the same connection from its side
    listener.proc.signal(signal.SIGINT)
    assert listener.proc.wait(15) == 0
    listen_doc = run_p2pdiag("analyze", str(listener.extra["trace"]), "--json")[1]
    assert listen_doc["outcome"] == "listened"
    assert listen_doc["facts"]["inbound_connections"] == 1
    assert listen_doc["facts"]["dialers"] and len(listen_doc["facts"]["dialers"]) == 1


def test_analyze_gives_the_same_verdict_as_the_live_run(py_relay, p2pdiag_listener, tmp_path):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))
    trace = tmp_path / "dial.jsonl"
    live = run_p2pdiag("dial", listener.peer_id, "--relay", relay.addr("tcp"), "--json", "--trace", str(trace))[1]
    offline_result, offline = run_p2pdiag("analyze", str(trace), "--json")
    assert live["outcome"] == "upgraded"  # by peer id, p2pdiag attempts the upgrade; p2pdiag listen answers
    assert offline_result.returncode == live["exit_code"] == 0
    for key in ("outcome", "headline", "steps", "findings", "facts"):
        assert offline[key] == live[key], key


def test_dial_by_peer_id_over_websocket(py_relay, p2pdiag_listener):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", listener.peer_id, "--relay", relay.addr("ws"), "--json")
    assert doc["outcome"] == "upgraded", doc
    assert step(doc, "target")["detail"].startswith("by peer id")
    assert step(doc, "relay.connect")["detail"].startswith("ws,")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok"


def test_second_relay_is_tried_when_the_first_is_down(py_relay, p2pdiag_listener):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))
    dead = _dead_relay_addr()
    _result, doc = run_p2pdiag("dial", listener.peer_id, "--relay", dead, "--relay", relay.addr("tcp"), "--json",
                               "--no-upgrade")
    assert doc["outcome"] == "relayed_only"
    assert "relay-unreachable" in codes(doc)
    assert doc["facts"]["relay"] == relay.addr("tcp")


def _dead_relay_addr() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"


def test_relay_nobody_listens_on(tmp_path):
    result, doc = run_p2pdiag("dial", "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV",
                              "--relay", _dead_relay_addr(), "--json")
    assert result.returncode == 4
    assert doc["outcome"] == "unreachable"
    assert codes(doc)[0] == "relay-unreachable"
    assert "refused" in doc["findings"][0]["title"]


def test_wrong_relay_peer_id(py_relay):
    relay = py_relay()
    wrong = relay.addr("tcp").rsplit("/", 1)[0] + "/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
    result, doc = run_p2pdiag("dial", "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV", "--relay", wrong,
                              "--json")
    assert result.returncode == 4
    assert codes(doc)[0] == "relay-wrong-peer-id", doc["findings"]


def test_peer_without_reservation(py_relay):
    relay = py_relay()
    result, doc = run_p2pdiag("dial", "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV",
                              "--relay", relay.addr("tcp"), "--json")
    assert result.returncode == 4
    assert codes(doc)[0] == "hop-no-reservation"
    assert step(doc, "hop.connect")["status"] == "failed"


def test_duration_limit_cut_is_reported(py_relay, p2pdiag_listener):
    relay = py_relay(duration_s=3)
    listener = p2pdiag_listener(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", listener.addrs[0], "--json", "--hold", "10", "--ping-interval", "0.5")
    assert doc["outcome"] == "relayed_only"
    assert "relay-cut-duration" in codes(doc), doc["findings"]
    after = step(doc, f"{doc['facts']['connection_id']}.after")
    assert after["status"] == "failed"
    assert 2.0 <= after["t_s"] <= 9.0


def test_data_limit_cut_is_reported(py_relay, p2pdiag_listener):
    relay = py_relay(data_bytes=12_000)
    listener = p2pdiag_listener(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", listener.addrs[0], "--json", "--hold", "20", "--ping-interval", "0.05")
    assert "relay-cut-data" in codes(doc), doc["findings"]
    assert "relay-cut-duration" not in codes(doc)


def test_ctrl_c_leaves_a_usable_partial_trace(spawn, py_relay, p2pdiag_listener, tmp_path):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))
    trace = tmp_path / "partial.jsonl"
    proc = spawn([sys.executable, "-m", "p2pdiag", "dial", listener.addrs[0], "--hold", "60", "--trace",
                  str(trace)], "p2pdiag dial")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "hold.started" not in (trace.read_text() if trace.exists() else ""):
        time.sleep(0.1)
    proc.signal(signal.SIGINT)
    assert proc.wait(20) == 130
    result, doc = run_p2pdiag("analyze", str(trace), "--json")
    assert doc["outcome"] == "interrupted" and result.returncode == 130
    assert "run-interrupted" in codes(doc)
    assert step(doc, "circuit.secure")["status"] == "ok"


def test_node_that_is_not_a_relay(py_relay):
    node = py_relay(no_hop=True)
    result, doc = run_p2pdiag("dial", "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV",
                              "--relay", node.addr("tcp"), "--json")
    assert result.returncode == 4
    assert codes(doc)[0] == "relay-no-hop", doc["findings"]
    assert "HOP NOT offered" in step(doc, "relay.identify")["detail"]


def test_identity_file_keeps_the_peer_id(py_relay, p2pdiag_listener, tmp_path):
    import os
    import stat

    relay = py_relay()
    key = tmp_path / "listener.key"
    first = p2pdiag_listener(relay.addr("tcp"), extra=["--identity", str(key)])
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    first.proc.signal(signal.SIGINT)
    first.proc.wait(15)
    second = p2pdiag_listener(relay.addr("tcp"), extra=["--identity", str(key)])
    assert second.peer_id == first.peer_id
    third = p2pdiag_listener(relay.addr("tcp"))
    assert third.peer_id != first.peer_id


def test_overall_budget_stops_a_hung_step(tmp_path):
    with socket.socket() as silent:  # accepts TCP and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        began = time.monotonic()
        result, doc = run_p2pdiag("dial", "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV", "--relay",
                                  f"/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
                                  "--timeout", "2", "--json")
        elapsed = time.monotonic() - began
    assert result.returncode == 130
    assert doc["outcome"] == "interrupted"
    assert "run-interrupted" in codes(doc)
    assert "--timeout ran out" in next(f for f in doc["findings"] if f["code"] == "run-interrupted")["title"]
    assert elapsed < 15, elapsed  # startup plus the 2 s budget, not the 10 s relay-connect timeout


def test_peer_closing_the_relayed_connection_after_the_upgrade_is_named(spawn, py_relay, tmp_path):
    """js-libp2p #3015, reproduced by a test peer: the upgrade works, then the peer drops the relay."""
    import json as _json

    relay = py_relay()
    peer = spawn([sys.executable, "tests/support/responder_peer.py", "--relay", relay.addr("tcp"),
                  "--trace", str(tmp_path / "peer.jsonl"), "--mode", "close-relayed-after-upgrade"], "responder")
    ready = _json.loads(peer.wait_line(lambda s: '"ready"' in s))
    target = next(a for a in ready["addrs"] if "/webrtc/" in a)
    _result, doc = run_p2pdiag("dial", target, "--json", "--ice-address", "127.0.0.1", "--hold", "3")
    assert "remote-closed-after-upgrade" in codes(doc), doc["findings"]
    assert "remote-closed-relayed" not in codes(doc)
    assert step(doc, f"{doc['facts']['connection_id']}.after")["status"] == "failed"
