"""The tracker names each state change once, at the first probe that shows it, and its end."""

from __future__ import annotations

from p2pdiag.watch.model import (
    AddrDial,
    CanaryResult,
    GossipFacts,
    Module,
    Observation,
    PeerFacts,
    RelayFacts,
    ReservationState,
    UpgradeFacts,
)
from p2pdiag.watch.tracker import BAD, NEWS, SLOT, ChangeKind, Tracker

TCP = "/ip4/127.0.0.1/tcp/4002/p2p/A"
WS = "/ip4/127.0.0.1/tcp/4003/ws/p2p/A"
CIRCUIT = "/ip4/127.0.0.1/tcp/4001/p2p/R/p2p-circuit/p2p/A"


def dial(addr, ok=True, reached=None, secured=None, relay=None, phase=None, kind=None):
    reached = ok if reached is None else reached
    secured = ok if secured is None else secured
    return AddrDial(addr=addr, transport="p2p-circuit" if relay else "tcp", relay=relay, ok=ok, reached=reached,
                    secured=secured, failed_phase=phase, error_kind=kind, error=None if ok else "boom")


def peer(t, *dials, addrs=(TCP, WS, CIRCUIT), agent="js-libp2p/3.3.11", identified=True):
    return Observation(module=Module.PEER, target="a", ok=identified, started_unix_s=t, duration_s=0.1,
                       peer=PeerFacts(agent=agent, listen_addrs=addrs, identified=identified, dials=dials))


def kinds(changes):
    return [c.kind for c in changes]


def test_a_healthy_first_probe_says_nothing_and_a_bad_one_says_what_is_wrong():
    assert Tracker().observe(peer(0, dial(TCP), dial(WS), dial(TCP, relay="r"))) == []
    changes = Tracker().observe(peer(0, dial(TCP, ok=False, phase="dial", kind="refused"), dial(WS)))
    assert kinds(changes) == [ChangeKind.ADDRESS_DOWN]
    assert changes[0].subject == TCP and "refused" in changes[0].detail
    # the only direct address refused, the relayed path answering: not listening, from the first probe
    changes = Tracker().observe(peer(0, dial(TCP, ok=False, phase="dial", kind="refused"), dial(TCP, relay="r")))
    assert kinds(changes) == [ChangeKind.PEER_NOT_LISTENING, ChangeKind.ADDRESS_DOWN]


def test_a_node_that_stops_listening_while_alive_through_the_relay():
    t = Tracker()
    t.observe(peer(0, dial(TCP), dial(WS), dial(TCP, relay="r")))
    refused = [dial(TCP, ok=False, phase="dial", kind="refused"), dial(WS, ok=False, phase="dial", kind="refused")]
    changes = t.observe(peer(30, *refused, dial(TCP, relay="r")))
    assert kinds(changes) == [ChangeKind.PEER_NOT_LISTENING, ChangeKind.ADDRESS_DOWN, ChangeKind.ADDRESS_DOWN]
    assert "through r" in changes[0].detail and changes[0].at_unix_s == 30.1
    assert t.observe(peer(60, *refused, dial(TCP, relay="r"))) == []  # named once, not every probe
    back = t.observe(peer(90, dial(TCP), dial(WS), dial(TCP, relay="r")))
    assert kinds(back) == [ChangeKind.PEER_UP, ChangeKind.PATH_OK, ChangeKind.PATH_OK]


def test_a_killed_node_is_down_not_merely_not_listening():
    t = Tracker()
    t.observe(peer(0, dial(TCP), dial(TCP, relay="r")))
    changes = t.observe(peer(30, dial(TCP, ok=False, phase="dial", kind="refused"),
                             dial(TCP, ok=False, relay="r", phase="hop", kind="NO_RESERVATION"), identified=False))
    assert kinds(changes) == [ChangeKind.PEER_DOWN, ChangeKind.ADDRESS_DOWN, ChangeKind.ADDRESS_DOWN]
    assert ChangeKind.PEER_NOT_LISTENING not in kinds(changes)
    assert "NO_RESERVATION" in changes[2].detail


def test_accepts_tcp_but_no_handshake():
    t = Tracker()
    t.observe(peer(0, dial(TCP)))
    hung = dial(TCP, ok=False, reached=True, secured=False, phase="secure", kind="timeout")
    changes = t.observe(peer(30, hung, dial(TCP, relay="r")))
    assert kinds(changes) == [ChangeKind.HANDSHAKE_FAILING]
    assert kinds(t.observe(peer(60, dial(TCP)))) == [ChangeKind.PATH_OK]


def test_addresses_that_vanish_from_identify_and_the_circuit_address():
    t = Tracker()
    t.observe(peer(0, dial(TCP)))
    changes = t.observe(peer(30, dial(TCP), addrs=(TCP,)))
    assert kinds(changes) == [ChangeKind.ADDRESS_VANISHED, ChangeKind.CIRCUIT_ADDRESS_MISSING]
    assert changes[0].subject == WS
    assert t.observe(peer(45, dial(TCP), addrs=(TCP,))) == []  # still gone: named once
    back = t.observe(peer(60, dial(TCP), addrs=(TCP, WS, CIRCUIT), agent="js-libp2p/3.4.0"))
    assert kinds(back) == [ChangeKind.ADDRESS_APPEARED, ChangeKind.CIRCUIT_ADDRESS_BACK, ChangeKind.AGENT_CHANGED]


def test_what_changed_while_the_peer_was_down_is_still_seen():
    t = Tracker()
    t.observe(peer(0, dial(TCP), dial(TCP, relay="r")))
    t.observe(peer(30, dial(TCP, ok=False, kind="refused"),
                   dial(TCP, ok=False, relay="r", phase="hop", kind="NO_RESERVATION"), addrs=(), identified=False))
    back = t.observe(peer(60, dial(TCP), dial(TCP, ok=False, relay="r", phase="hop", kind="NO_RESERVATION"),
                          addrs=(TCP, WS), agent="js-libp2p/3.4.0"))
    assert kinds(back) == [ChangeKind.PEER_UP, ChangeKind.PATH_OK, ChangeKind.CIRCUIT_ADDRESS_MISSING,
                           ChangeKind.AGENT_CHANGED]  # restarted without its reservation (#3601)


def test_a_path_fault_ends_whatever_the_path_becomes():
    t = Tracker()
    hung = dial(TCP, ok=False, reached=True, secured=False, phase="secure", kind="timeout")
    refused = dial(TCP, ok=False, phase="dial", kind="refused")
    assert kinds(t.observe(peer(0, hung, dial(WS)))) == [ChangeKind.HANDSHAKE_FAILING]
    assert kinds(t.observe(peer(30, refused, dial(WS)))) == [ChangeKind.ADDRESS_DOWN]  # same slot: it ends the first
    assert kinds(t.observe(peer(60, hung, dial(WS)))) == [ChangeKind.HANDSHAKE_FAILING]
    assert kinds(t.observe(peer(90, dial(TCP), dial(WS)))) == [ChangeKind.PATH_OK]


def test_a_path_no_longer_dialed_ends_its_fault():
    t = Tracker()
    t.observe(peer(0, dial(TCP), dial(WS, ok=False, kind="refused")))
    dropped = t.observe(peer(30, dial(TCP)))
    assert kinds(dropped) == [ChangeKind.PATH_DROPPED] and dropped[0].subject == WS


def test_a_probe_cut_by_the_scheduler_changes_no_peer_slot():
    t = Tracker()
    t.observe(peer(0, dial(TCP, ok=False, kind="refused"), dial(TCP, relay="r")))
    cut = Observation(module=Module.PEER, target="a", ok=False, started_unix_s=30, duration_s=11, timed_out=True)
    assert t.observe(cut) == []
    assert kinds(t.observe(peer(60, dial(TCP), dial(TCP, relay="r")))) == [ChangeKind.PEER_UP, ChangeKind.PATH_OK]


def test_a_relay_that_cuts_held_circuits():
    t = Tracker()
    cut = AddrDial(addr=TCP, transport="p2p-circuit", relay="r", ok=True, reached=True, secured=True, held_s=3.1,
                   cut="duration", cut_after_s=3.0)
    changes = t.observe(peer(0, dial(TCP), cut))
    assert kinds(changes) == [ChangeKind.RELAY_CUT_DURATION] and "after 3.0 s" in changes[0].detail
    assert kinds(t.observe(peer(30, dial(TCP), dial(TCP, relay="r")))) == [ChangeKind.PATH_OK]


def test_addresses_are_not_judged_from_a_probe_that_did_not_identify():
    t = Tracker()
    t.observe(peer(0, dial(TCP)))
    changes = t.observe(peer(30, dial(TCP, ok=False, kind="timeout"), addrs=(), identified=False))
    assert ChangeKind.ADDRESS_VANISHED not in kinds(changes)
    assert ChangeKind.CIRCUIT_ADDRESS_MISSING not in kinds(changes)


def relay(t, ok=True, hop=True, limits=(120.0, 131072), agent="go-libp2p/0.41"):
    return Observation(module=Module.RELAY, target="r", ok=ok, started_unix_s=t, duration_s=0.05,
                       failed_phase=None if ok else "relay-dial", error_kind=None if ok else "refused",
                       relay=RelayFacts(agent=agent, hop_offered=hop, reservation_status="OK" if ok else None,
                                        limit_duration_s=limits[0], limit_data_bytes=limits[1]))


def test_relay_changes():
    t = Tracker()
    assert t.observe(relay(0)) == []
    assert kinds(t.observe(relay(30, limits=(60.0, 131072)))) == [ChangeKind.RELAY_LIMITS_CHANGED]
    down = t.observe(relay(60, ok=False))
    assert kinds(down) == [ChangeKind.PROBE_FAILED] and "relay-dial failed: refused" in down[0].detail
    assert kinds(t.observe(relay(90, hop=False, ok=False))) == [ChangeKind.RELAY_HOP_WITHDRAWN]
    # back with its first limits: compared with the last probe that had limits (30 s), not the failed ones
    assert kinds(t.observe(relay(120))) == [ChangeKind.PROBE_RECOVERED, ChangeKind.RELAY_HOP_OFFERED,
                                            ChangeKind.RELAY_LIMITS_CHANGED]
    # limits compared with the last probe that had them, across the outage
    t.observe(relay(150, ok=False))
    assert kinds(t.observe(relay(180, limits=(3600.0, 131072)))) == [ChangeKind.PROBE_RECOVERED,
                                                                      ChangeKind.RELAY_LIMITS_CHANGED]


def test_reservation_life():
    t = Tracker()
    assert t.reservation(ReservationState("r", up=True, at_unix_s=0, expiry_unix_s=3600)) == []
    assert t.reservation(ReservationState("r", up=True, at_unix_s=100, refreshes=1)) == []
    lost = t.reservation(ReservationState("r", up=False, at_unix_s=200, error_kind="closed", error="relay restarted"))
    assert kinds(lost) == [ChangeKind.RESERVATION_LOST] and "relay restarted" in lost[0].detail
    assert t.reservation(ReservationState("r", up=False, at_unix_s=230)) == []
    back = t.reservation(ReservationState("r", up=True, at_unix_s=260))
    assert kinds(back) == [ChangeKind.RESERVATION_RESTORED] and "60 s" in back[0].detail


def gossip(t, delivered=(True, True), subscribed=None):
    canaries = tuple(CanaryResult("a", n, d, 0.05 if d else None, "B" if d else None) for n, d in enumerate(delivered))
    return Observation(module=Module.GOSSIPSUB, target="chat", ok=all(delivered), started_unix_s=t, duration_s=1,
                       gossip=GossipFacts(canaries=canaries, subscribed=subscribed or {"A": True}))


def test_canaries_and_subscriptions():
    t = Tracker()
    assert t.observe(gossip(0)) == []
    loss = t.observe(gossip(30, (True, False), {"A": False}))
    assert kinds(loss) == [ChangeKind.PROBE_FAILED, ChangeKind.CANARY_LOSS, ChangeKind.SUBSCRIPTION_LOST]
    assert "1 of 2" in loss[1].detail
    assert kinds(t.observe(gossip(60))) == [ChangeKind.PROBE_RECOVERED, ChangeKind.CANARY_RECOVERED,
                                             ChangeKind.SUBSCRIPTION_SEEN]


def test_upgrade_outcome_changes():
    def up(t, outcome, causes):
        return Observation(module=Module.UPGRADE, target="a", ok=outcome == "upgraded", started_unix_s=t,
                           duration_s=1, upgrade=UpgradeFacts(outcome=outcome, causes=causes))

    t = Tracker()
    t.observe(up(0, "upgraded", ()))
    changes = t.observe(up(600, "relayed_only", ("udp-blocked-remote",)))
    assert kinds(changes) == [ChangeKind.PROBE_FAILED, ChangeKind.UPGRADE_CHANGED]
    assert "udp-blocked-remote" in changes[1].detail
    assert t.observe(up(1200, "relayed_only", ("udp-blocked-remote", "x"))) == []


def test_every_fault_has_a_slot_that_can_end_it_and_memory_does_not_grow():
    for kind in BAD:
        assert any(SLOT[k] == SLOT[kind] and k not in BAD for k in SLOT), kind
    assert not NEWS & BAD
    t = Tracker()
    for n in range(1000):
        t.observe(peer(n, dial(TCP), dial(WS, ok=n % 2 == 0, kind="refused")))
    # the peer, two paths, two announced addresses, the circuit address
    assert len(t._state) == 1 and len(t._state[(Module.PEER, "a")].slots) == 6


def test_a_path_that_fails_for_a_new_reason_is_named_again():
    t = Tracker()
    t.observe(peer(0, dial(TCP), dial(TCP, relay="r")))
    relay_down = dial(TCP, ok=False, relay="r", phase="relay-dial", kind="refused")
    assert kinds(t.observe(peer(30, dial(TCP), relay_down))) == [ChangeKind.ADDRESS_DOWN]
    # the relay is back, but the node never reserved again (#3601): the relay answers NO_RESERVATION
    no_reservation = dial(TCP, ok=False, relay="r", phase="hop", kind="NO_RESERVATION")
    again = t.observe(peer(60, dial(TCP), no_reservation))
    assert kinds(again) == [ChangeKind.ADDRESS_DOWN] and "NO_RESERVATION" in again[0].detail
    assert t.observe(peer(90, dial(TCP), no_reservation)) == []
    # an error kind that alternates in the same phase is not a new fault
    assert kinds(t.observe(peer(120, dial(TCP, ok=False, kind="reset"), no_reservation))) == [ChangeKind.ADDRESS_DOWN]
    assert t.observe(peer(150, dial(TCP, ok=False, kind="closed"), no_reservation)) == []
