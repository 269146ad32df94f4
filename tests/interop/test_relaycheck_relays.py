"""relay-check against real relays on 127.0.0.1: py-libp2p and js-libp2p relays with default and
short limits, a js relay whose slots run out, a node that is not a relay, a port nothing listens
on, and the misbehaving relay in each mode. Each gives its own finding, no traceback, no hang."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from support.relaycheck import RELAY_CHECK, ROOT, dead_addr, relay_codes, relay_row, run_relay_check

from p2pdiag.peers.badrelay import Mode


def test_py_relay_passes_over_tcp_and_websocket_and_analyze_agrees(py_relay, tmp_path):
    relay = py_relay()
    trace = tmp_path / "t.jsonl"
    result, doc = run_relay_check(relay.addr("tcp"), relay.addr("ws"), "--trace", str(trace))
    assert result.returncode == 0, doc["findings"]
    assert doc["outcome"] == "relays_ok"
    for label in ("r1", "r2"):
        row = relay_row(doc, label)
        assert row["verdict"] == "pass" and row["finding_codes"] == []
        assert row["voucher"]["ok"] and row["loop"]["ok"] and row["drop"]["ok"]
    assert relay_row(doc, "r2")["transport"] == "ws"
    offline = json.loads(subprocess.run([*RELAY_CHECK[:-1], "analyze", str(trace), "--json"], capture_output=True,
                                        text=True, cwd=ROOT, timeout=30, check=False).stdout)
    for key in ("outcome", "headline", "steps", "findings", "facts"):
        assert offline[key] == doc[key], key


def test_py_relay_short_limits_measured(py_relay):
    relay = py_relay(duration_s=4, data_bytes=65536, ws=False)
    result, doc = run_relay_check(relay.addr("tcp"), "--measure-limits")
    assert result.returncode == 0
    row = relay_row(doc, "r1")
    assert row["verdict"] == "warn" and relay_codes(doc) == ["relay-limit-too-small"]
    assert row["measured"]["data"]["cut"] and row["measured"]["data"]["shared_budget"]
    assert 3.5 <= row["measured"]["duration"]["age_s"] <= 6


@pytest.mark.interop
def test_js_relay_announces_milliseconds(js_relay):
    relay = js_relay()
    result, doc = run_relay_check(relay.addr("tcp"))
    assert result.returncode == 0
    assert relay_row(doc)["verdict"] == "warn" and relay_codes(doc) == ["relay-limit-unit"]
    assert relay_row(doc)["limits"]["duration_s"] == 120


@pytest.mark.interop
def test_js_relay_short_limits_measured_settles_the_unit(js_relay):
    relay = js_relay(duration_ms=4000, data_bytes=65536)
    result, doc = run_relay_check(relay.addr("tcp"), "--measure-limits")
    assert result.returncode == 0
    assert set(relay_codes(doc)) == {"relay-limit-unit", "relay-limit-too-small"}
    unit = next(f for f in doc["findings"] if f["code"] == "relay-limit-unit")
    assert unit["confidence"] == "certain"
    assert 3.5 <= relay_row(doc)["measured"]["duration"]["age_s"] <= 6


@pytest.mark.interop
def test_js_relay_with_its_slots_filled(js_relay):
    relay = js_relay(max_reservations=2)
    result, doc = run_relay_check(relay.addr("tcp"), "--reservations", "3")
    assert result.returncode == 0  # the relay works; running out of slots is a warning
    assert {"relay-slots-full", "relay-slots-not-freed"} <= set(relay_codes(doc))
    assert relay_row(doc)["slots"]["refused_at"] == 2
    # js-libp2p keeps the slots of p2pdiag's disconnected identities: the next check gets none
    result, doc = run_relay_check(relay.addr("tcp"))
    assert result.returncode == 5
    assert relay_codes(doc) == ["reservation-refused"]
    assert "RESERVATION_REFUSED" in doc["findings"][0]["title"]


def test_a_node_that_is_not_a_relay(py_relay):
    node = py_relay(no_hop=True, ws=False)
    result, doc = run_relay_check(node.addr("tcp"))
    assert result.returncode == 5
    assert relay_codes(doc) == ["relay-no-hop"]
    assert relay_row(doc)["cells"]["hop"] == {"status": "failed", "text": "not offered"}


def test_an_address_nothing_listens_on():
    began = time.monotonic()
    result, doc = run_relay_check(dead_addr())
    assert result.returncode == 5 and relay_codes(doc) == ["relay-unreachable"]
    assert "refused" in doc["findings"][0]["title"]
    assert time.monotonic() - began < 10


BAD = {  # mode: the finding it must give, first
    Mode.BAD_SIGNATURE: "voucher-bad-signature",
    Mode.WRONG_PEER: "voucher-wrong-peer",
    Mode.WRONG_DOMAIN: "voucher-bad-signature",
    Mode.EXPIRED: "reservation-ttl",
    Mode.UNKNOWN_STATUS: "hop-unknown-status",
    Mode.SILENT: "reserve-unanswered",
    Mode.NO_RELAY: "relay-loop-failed",
}


def test_each_misbehaving_relay_gives_its_own_finding_in_one_fleet_run(bad_relay, py_relay):
    good = py_relay(ws=False).addr("tcp")
    addrs = [bad_relay(mode.value) for mode in BAD] + [good, dead_addr()]
    began = time.monotonic()
    result, doc = run_relay_check(*addrs, "--step-timeout", "reserve=2", "--step-timeout", "ping=2")
    assert time.monotonic() - began < 30  # no relay holds up the others
    assert result.returncode == 5
    for n, (mode, code) in enumerate(BAD.items(), start=1):
        row = relay_row(doc, f"r{n}")
        assert row["verdict"] == "fail", mode
        assert row["finding_codes"][0] == code, (mode, row["finding_codes"])
    assert relay_row(doc, "r3")["voucher"]["failed"] == ["domain"]
    assert relay_row(doc, "r8")["verdict"] == "pass"
    # every step.timed_out names its relay: the silent relay's RESERVE wait is its own, no other relay's
    silent = f"r{list(BAD).index(Mode.SILENT) + 1}"
    assert [(t["step"], t["timeout_s"]) for t in relay_row(doc, silent)["timed_out"]] == [("reserve", 2.0)]
    no_relay = f"r{list(BAD).index(Mode.NO_RELAY) + 1}"
    # the loop runs raw on the circuit: the relay that relays nothing leaves the first ping unanswered
    assert [(t["step"], t["timeout_s"]) for t in relay_row(doc, no_relay)["timed_out"]] == [("ping", 2.0)]
    assert relay_row(doc, no_relay)["loop"]["failed_stage"] == "ping"
    assert "got no STOP CONNECT" in relay_row(doc, no_relay)["loop"]["error"]
    assert all(not r["timed_out"] for r in doc["facts"]["relays"] if r["label"] not in (silent, no_relay))
    assert relay_codes(doc, "r9") == ["relay-unreachable"]


def test_a_relay_that_changes_relayed_bytes_is_caught(bad_relay):
    """No Noise on the loop circuit to catch it: the ping echo is compared byte for byte, the payload
    by the count and SHA-256 the far end sends back."""
    result, doc = run_relay_check(bad_relay(Mode.CORRUPT.value), bad_relay(Mode.CORRUPT_PAYLOAD.value))
    assert result.returncode == 5
    every_chunk = relay_row(doc, "r1")
    assert every_chunk["verdict"] == "fail" and every_chunk["finding_codes"][0] == "relay-loop-failed"
    assert every_chunk["loop"]["failed_stage"] == "ping"
    assert "came back changed (1 of 32 bytes differ" in every_chunk["loop"]["error"]
    payload_only = relay_row(doc, "r2")
    assert payload_only["loop"]["ok"] and len(payload_only["loop"]["rtt_s"]) == 2  # the pings went through intact
    assert payload_only["verdict"] == "fail" and payload_only["finding_codes"][0] == "relay-transfer-failed"
    assert "SHA-256 differs" in payload_only["loop"]["throughput"]["error"]


def test_a_short_transfer_is_a_warning_not_data_arriving_changed(bad_relay):
    """A relay that stops passing the payload part way: the far end counts fewer bytes (and so hashes
    other ones); that is data that did not all arrive, not data that arrived changed."""
    doc = run_relay_check(bad_relay(Mode.SHORT_PAYLOAD.value))[1]
    row = relay_row(doc, "r1")
    assert row["loop"]["ok"] and len(row["loop"]["rtt_s"]) == 2  # the pings went through
    assert "counted" in row["loop"]["throughput"]["error"], row["loop"]
    transfer = next(f for f in doc["findings"] if f["code"] == "relay-transfer-failed")
    assert transfer["severity"] == "warning", transfer
    assert "did not all arrive" in transfer["title"]


def test_a_relay_slower_than_the_timeout_is_reported_not_waited_for(bad_relay):
    began = time.monotonic()
    result, doc = run_relay_check(bad_relay("silent"), "--timeout", "3")
    assert time.monotonic() - began < 10
    assert result.returncode == 5 and relay_codes(doc) == ["relay-check-incomplete"]


def test_from_file_with_bad_lines_checks_the_others(py_relay, tmp_path):
    good = py_relay(ws=False).addr("tcp")
    listing = tmp_path / "relays.txt"
    listing.write_text(f"{good}\n/ip4/10.0.0.1/tcp/4001\nnot-a-multiaddr\n{dead_addr()}\n")
    result, doc = run_relay_check("--from-file", str(listing))
    assert result.returncode == 5
    assert relay_row(doc, "r1")["verdict"] == "pass" and relay_codes(doc, "r2") == ["relay-unreachable"]
    assert [(r["line"], r["duplicate_of"]) for r in doc["facts"]["rejected_entries"]] == [(2, None), (3, None)]
    assert doc["findings"][0]["code"] == "relay-entry-rejected"


def test_ctrl_c_during_a_measurement_gives_the_partial_verdict(py_relay, spawn, tmp_path):
    relay = py_relay(duration_s=60, data_bytes=65536, ws=False)
    trace = tmp_path / "t.jsonl"
    proc = spawn([*RELAY_CHECK, relay.addr("tcp"), "--measure-limits", "--json", "--trace", str(trace)],
                 "relay-check")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and '"measure-duration"' not in (trace.read_text() if trace.exists() else ""):
        time.sleep(0.1)
    proc.signal(signal.SIGINT)
    assert proc.wait(20) == 130
    doc = json.loads("".join(proc.stdout))
    assert doc["outcome"] == "interrupted" and "run-interrupted" in [f["code"] for f in doc["findings"]]
    assert relay_row(doc)["measured"]["data"]["cut"]
    assert "Traceback" not in "".join(proc.stderr)


def test_the_terminal_view(py_relay):
    relay = py_relay(ws=False)
    result = subprocess.run([*RELAY_CHECK, relay.addr("tcp"), dead_addr()], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 5
    out = result.stdout
    assert "reachable" in out and "voucher" in out and "✓ PASS" in out and "✗ FAIL" in out
    assert "r2 /ip4/127.0.0.1/tcp/" in out and "more: p2pdiag explain relay-unreachable" in out
    assert "Verdict (relay_problem, exit 5)" in out
