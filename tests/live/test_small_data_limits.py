"""A py-libp2p relay whose data limit runs out while `dial` is still checking the peer, on loopback.

Whatever step the relay cuts (the Noise and muxer handshake, identify over the relayed connection),
the verdict's first finding is relay-cut-data, an error, with the bytes at the cut as data beside
the announced limit; what failed after the cut is kept, as a warning. The lab runs the 4 KiB row
(tests/lab/test_scenarios.py, cone-cone-py-data-limit-4k), which cuts at the first ping.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support import codes, run_p2pdiag, step

# py-libp2p's relay drops whole the chunk that would overrun its budget and resets both streams,
# so the dialer's count lands within one chunk of the limit (see CUT_SLACK_BYTES in
# tests/lab/test_scenarios.py); in the handshake and identify the chunks are a few hundred bytes.
CUT_SLACK_BYTES = 1280


@pytest.mark.parametrize(("limit", "during", "outcome", "then"), [
    (300, "secure", "unreachable", "circuit-handshake-failed"),  # Noise + muxer need ~600 bytes
    (1000, "identify", "relayed_only", "identify-failed"),  # identify needs ~1.5 KiB each way
])
def test_a_small_data_limit_is_the_cause_whatever_step_it_cuts(py_relay, p2pdiag_listener, limit, during,
                                                                 outcome, then):
    relay = py_relay(data_bytes=limit)
    listener = p2pdiag_listener(relay.addr("tcp"))
    target = next(a for a in listener.addrs if "/webrtc/" in a)
    result, doc = run_p2pdiag("dial", target, "--json", "--ice-address", "127.0.0.1", timeout=60)
    assert doc["outcome"] == outcome, doc["headline"]
    assert result.returncode == doc["exit_code"] == (4 if outcome == "unreachable" else 3)
    first = doc["findings"][0]
    assert (first["code"], first["severity"]) == ("relay-cut-data", "error"), codes(doc)
    assert "relay-cut-duration" not in codes(doc)
    consequence = next(f for f in doc["findings"] if f["code"] == then)
    assert consequence["severity"] == "warning"  # kept, but not the cause
    cut = doc["facts"]["relay_cut"]
    assert (cut["cause"], cut["during"], cut["data_limit"]) == ("data", during, limit)
    assert cut["bytes"] == cut["bytes_sent"] + cut["bytes_received"]
    assert abs(cut["bytes"] - limit) <= CUT_SLACK_BYTES, cut
    assert first["data"]["bytes"] == cut["bytes"] and first["data"]["data_limit"] == limit  # on the finding too
    if during == "secure":
        assert step(doc, "circuit.secure")["status"] == "failed"
        assert "connection_id" not in doc["facts"]  # no relayed connection was ever made
        # the listener saw the same cut under its side of the handshake: the same cause first
        heard = listener_verdict(listener.extra["trace"])
        assert heard["findings"][0]["code"] == "relay-cut-data", codes(heard)
        assert heard["findings"][0]["data"]["during"] == "secure"
        assert next(f for f in heard["findings"] if f["code"] == "circuit-handshake-failed")["severity"] == "warning"
    else:
        assert step(doc, f"{doc['facts']['connection_id']}.after")["status"] == "failed"


def listener_verdict(trace: Path, wait_s: float = 10.0) -> dict:
    """`p2pdiag analyze --json` of a running listener's trace, once it has recorded the failed handshake."""
    deadline = time.monotonic() + wait_s
    while '"circuit.upgrade_failed"' not in trace.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    result, doc = run_p2pdiag("analyze", str(trace), "--json")
    assert result.returncode == 0, result.stderr
    return doc
