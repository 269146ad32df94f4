"""A go-libp2p relay's reservations in time, and a duration limit shorter than a second.

Measured here (go-libp2p v0.52.0): `expire` is whole unix seconds (a 3 s TTL reads as 2 or 3 s
from the reply); a refresh moves it; a reservation past its expiry still gets CONNECTs through
until the relay's once-a-minute sweep removes it; a duration limit under a second goes on the wire
as 0 (no limit) while the relay still cuts at it.
"""

from __future__ import annotations

import json
import time

import pytest
from support import codes, run_p2pdiag, step
from support.relaycheck import relay_codes, run_relay_check

pytestmark = pytest.mark.interop


def test_a_short_reservation_ttl_is_flagged_and_refreshing_keeps_the_peer_reachable(go_relay, go_peer):
    relay = go_relay(reservation_ttl_ms=3000, no_ws=True)
    assert relay.extra["reservation_ttl_ms"] == 3000
    _result, doc = run_relay_check(relay.addr("tcp"))
    assert "reservation-ttl" in relay_codes(doc), doc["findings"]
    ttl = next(f for f in doc["findings"] if f["code"] == "reservation-ttl")
    assert any(" s after the reply arrived" in e for e in ttl["evidence"]), ttl
    peer = go_peer(relay.addr("tcp"))
    time.sleep(5)  # past the first reservation's expiry: only the refreshes keep the slot
    _result, doc = run_p2pdiag("dial", peer.addrs[0], "--json")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok", doc["steps"]
    reservations = [json.loads(s) for s in peer.proc.stderr if '"event":"reservation"' in s]
    expiries = [r["expire"] for r in reservations]
    assert sum(r["refresh"] for r in reservations) >= 2 and expiries == sorted(expiries), reservations
    assert expiries[-1] > peer.extra["reservation"]["expire"]


def test_a_go_relay_honours_a_reservation_past_its_expiry_until_its_sweep(go_relay, go_peer):
    relay = go_relay(reservation_ttl_ms=2000, no_ws=True)
    peer = go_peer(relay.addr("tcp"), no_refresh=True)
    expire = peer.extra["reservation"]["expire"]
    time.sleep(max(0.0, expire + 2 - time.time()))  # 2 s past its expiry, well before the relay's first sweep (60 s)
    _result, doc = run_p2pdiag("dial", peer.addrs[0], "--json")
    assert step(doc, "hop.connect")["status"] == "ok", step(doc, "hop.connect")
    assert step(doc, f"{doc['facts']['connection_id']}.ping")["status"] == "ok", doc["steps"]
    assert not any('"refresh":true' in s for s in peer.proc.stderr)


def test_a_sub_second_duration_cut_is_not_blamed_on_the_peer(go_relay, go_peer):
    relay = go_relay(duration_ms=500, no_ws=True)
    peer = go_peer(relay.addr("tcp"))
    _result, doc = run_p2pdiag("dial", peer.addrs[0], "--json", "--hold", "3", "--ping-interval", "0.2")
    assert "no time limit" in step(doc, "hop.connect")["detail"]  # what the relay announced: 0
    assert "remote-closed-relayed" not in codes(doc), doc["findings"]
    # the relay's cut, named as its duration limit: go-libp2p announces a limit under a second as 0
    cut = next(f for f in doc["findings"] if f["code"] == "relay-cut-duration")
    assert any("announced a duration limit of 0" in e for e in cut["evidence"]), cut
