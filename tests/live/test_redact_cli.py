"""--redact on live runs: a py-libp2p relay and `p2pdiag listen --redact` on loopback, `dial --redact` through them."""

from __future__ import annotations

import json
import signal

from support import run_p2pdiag


def test_dial_and_listen_redact_their_traces_and_verdicts(py_relay, p2pdiag_listener, tmp_path):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"), extra=["--redact"])  # it still prints its real addresses
    circuit = next(a for a in listener.addrs if "/webrtc/" not in a)
    assert listener.peer_id in circuit and relay.peer_id in circuit
    trace = tmp_path / "dial.jsonl"
    result, doc = run_p2pdiag("dial", circuit, "--json", "--trace", str(trace), "--redact")
    assert result.returncode == 3, result.stderr  # as without --redact: reached through the relay
    assert doc["outcome"] == "relayed_only" and doc["facts"]["trace_redacted"] is True
    text = trace.read_text()
    assert json.loads(text.splitlines()[0])["redacted"] is True
    for original in (relay.peer_id, listener.peer_id):
        assert original not in text and original not in result.stdout
    assert doc["facts"]["peer_id"].startswith("12D3KooW")
    # the trace gives the verdict the live run showed
    offline = run_p2pdiag("analyze", str(trace), "--json")[1]
    assert {**offline, "trace_file": None} == {**doc, "trace_file": None}

    listener.proc.signal(signal.SIGINT)
    assert listener.proc.wait(15) == 0
    listen_trace = listener.extra["trace"].read_text()
    assert relay.peer_id not in listen_trace and listener.peer_id not in listen_trace
    listen_doc = run_p2pdiag("analyze", str(listener.extra["trace"]), "--json")[1]
    assert listen_doc["outcome"] == "listened" and listen_doc["facts"]["inbound_connections"] == 1
    assert listen_doc["facts"]["trace_redacted"] is True
