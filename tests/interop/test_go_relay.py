"""relay-check against go-libp2p's relay service (interop/go/cmd/relay), as the network runs it.

What was measured here (go-libp2p v0.52.0), each by the test named:
- Limit.duration is whole seconds on the wire: 120 for the default two minutes
  (test_relay_check_reads_a_go_relays_limits_in_seconds), cut at the announced age (..._measured).
- Reservations carry no addresses when the relay has only private or loopback ones: go-libp2p
  filters them with manet.IsPublicAddr (test_..._in_seconds; with every address let through the
  relay passes: test_a_go_relay_that_puts_every_address_in_reservations_passes).
- The data limit counts each direction alone (test_go_relay_data_limit_is_measured_per_direction).
- 8 reservations per IP address: the 9th identity from one IP is refused with RESERVATION_REFUSED,
  the status a relay with no slot left sends; a slot is freed as soon as its holder disconnects
  (test_a_go_relay_refuses_the_ninth_reservation_from_one_ip).
"""

from __future__ import annotations

import re

import pytest
from support.relaycheck import relay_codes, relay_row, run_relay_check

pytestmark = pytest.mark.interop


def _step(doc: dict, title_start: str) -> dict:
    found = [s for s in doc["steps"] if s["title"].startswith(title_start)]
    assert found, f"no step '{title_start}' in {[s['title'] for s in doc['steps']]}"
    return found[0]


def test_relay_check_reads_a_go_relays_limits_in_seconds(go_relay):
    relay = go_relay()
    assert relay.extra["limits"] == {"duration_ms": 120000, "data_bytes": 131072}  # go-libp2p's defaults
    result, doc = run_relay_check(relay.addr("tcp"), relay.addr("ws"))
    assert result.returncode == 0 and doc["outcome"] == "relays_ok", doc["findings"]
    for label in ("r1", "r2"):
        row = relay_row(doc, label)
        assert row["limits"]["announced_duration"] == 120 and row["limits"]["duration_s"] == 120
        assert not row["limits"]["duration_unit_suspect"]
        assert row["limits"]["data_bytes"] == 131072
        assert row["voucher"]["ok"] and row["loop"]["ok"] and row["drop"]["ok"]
        # on loopback go-libp2p puts no address in the reservation (its default filter keeps public ones)
        assert relay_codes(doc, label) == ["reservation-addrs"], relay_codes(doc, label)
    assert relay_row(doc, "r2")["transport"] == "ws"
    assert "go-libp2p@" + relay.extra["version"] in _step(doc, "Identify the relay")["detail"]
    reserve = _step(doc, "Reserve a slot")["detail"]
    assert "expires in 1 h" in reserve and "0 addrs" in reserve and "limit: 2 min, 128 KiB" in reserve
    # go-libp2p frees the slot when its holder disconnects: the dropped peer has no reservation left
    assert "NO_RESERVATION" in _step(doc, "Drop the reserving connection")["detail"]


def test_a_go_relay_that_puts_every_address_in_reservations_passes(go_relay):
    relay = go_relay(reservation_addrs="all", no_ws=True)
    result, doc = run_relay_check(relay.addr("tcp"))
    assert result.returncode == 0
    assert relay_row(doc)["verdict"] == "pass" and relay_codes(doc) == [], doc["findings"]
    assert "1 addrs" in _step(doc, "Reserve a slot")["detail"]


def test_go_relay_short_limits_measured(go_relay):
    relay = go_relay(duration_ms=4000, data_bytes=65536, no_ws=True)
    result, doc = run_relay_check(relay.addr("tcp"), "--measure-limits")
    assert result.returncode == 0
    row = relay_row(doc)
    assert row["limits"]["announced_duration"] == 4 and not row["limits"]["duration_unit_suspect"]
    assert "relay-limit-unit" not in relay_codes(doc) and "relay-limit-too-small" in relay_codes(doc)
    duration = row["measured"]["duration"]
    assert duration["cut"] and 3.5 <= duration["age_s"] <= 6, duration


def test_go_relay_data_limit_is_measured_per_direction(go_relay):
    """go-libp2p counts the data limit in each direction alone: the echo goes on until each direction
    passed the limit (it had stopped at 1.375 x the limit both ways together, 45 KiB each way for
    64 KiB, and reported relay-limit-not-enforced, blaming the relay for its own assumption)."""
    relay = go_relay(duration_ms=4000, data_bytes=65536, no_ws=True)
    result, doc = run_relay_check(relay.addr("tcp"), "--measure-limits")
    assert result.returncode == 0
    assert "relay-limit-not-enforced" not in relay_codes(doc), doc["findings"]
    data = relay_row(doc)["measured"]["data"]
    assert data["cut"] and max(data["bytes_sent"], data["bytes_received"]) >= 65536, data
    assert data["shared_budget"] is False, data  # read as a budget per direction


def test_a_go_relay_refuses_the_ninth_reservation_from_one_ip(go_relay):
    relay = go_relay(no_ws=True)
    assert relay.extra["max_reservations"] == 128 and relay.extra["max_reservations_per_ip"] == 8
    result, doc = run_relay_check(relay.addr("tcp"), "--reservations", "10")
    assert result.returncode == 0
    slots = relay_row(doc)["slots"]
    # p2pdiag's first identity was dropped before: its slot is free again, so 8 more fit the per-IP limit
    assert (slots["granted"], slots["refused_at"], slots["status"]) == (8, 9, "RESERVATION_REFUSED"), slots
    assert slots["freed_slot_reused"] and "relay-slots-not-freed" not in relay_codes(doc)
    assert "relay-slots-full" in relay_codes(doc)


def test_the_per_ip_refusal_of_a_go_relay_is_not_blamed_on_its_slots(go_relay):
    """8 reservations from one IP is go-libp2p's per-IP limit, refused with the same status as full
    slots: the finding names the per-IP limit first, not only 'raise the relay's maximum'."""
    relay = go_relay(no_ws=True)
    _result, doc = run_relay_check(relay.addr("tcp"), "--reservations", "10")
    full = next(f for f in doc["findings"] if f["code"] == "relay-slots-full")
    said = full["title"] + " ".join(full["evidence"]) + full["advice"]
    assert re.search(r"per[- ]IP", said, re.IGNORECASE), full


def test_a_go_relay_out_of_slots(go_relay):
    """The total limit (not the per-IP one) hit: the same RESERVATION_REFUSED on the wire."""
    relay = go_relay(no_ws=True, max_reservations=3)
    result, doc = run_relay_check(relay.addr("tcp"), "--reservations", "5")
    assert result.returncode == 0
    slots = relay_row(doc)["slots"]
    assert (slots["granted"], slots["refused_at"], slots["status"]) == (3, 4, "RESERVATION_REFUSED"), slots
    assert slots["freed_slot_reused"] and "relay-slots-full" in relay_codes(doc)


def test_a_fleet_of_py_js_and_go_relays_in_one_run(py_relay, js_relay, go_relay):
    """Each relay judged by what it sent: the js relay's milliseconds are a unit finding, the go
    relay's seconds are not."""
    addrs = [py_relay(ws=False).addr("tcp"), js_relay().addr("tcp"), go_relay(reservation_addrs="all").addr("tcp")]
    result, doc = run_relay_check(*addrs)
    assert result.returncode == 0
    assert relay_codes(doc, "r1") == [] and relay_codes(doc, "r2") == ["relay-limit-unit"]
    assert relay_codes(doc, "r3") == [] and relay_row(doc, "r3")["verdict"] == "pass"
    assert relay_row(doc, "r2")["limits"]["duration_s"] == relay_row(doc, "r3")["limits"]["duration_s"] == 120
