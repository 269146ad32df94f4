"""watch's metrics (`p2pdiag/watch/metrics.py`): what each observation sets, what disappears when it
stops being true, and that the series stay bounded over many probes and hostile peers."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support.work import cost

from p2pdiag.watch.metrics import (
    FACTS,
    MAX_ADDRS_PER_TARGET,
    MAX_LABEL_CHARS,
    TRANSPORTS,
    WatchMetrics,
    probe_registry,
    transport_of,
)
from p2pdiag.watch.model import (
    AddrDial,
    CanaryResult,
    GossipFacts,
    GossipTarget,
    Module,
    Observation,
    PeerFacts,
    PeerTarget,
    Phase,
    RelayFacts,
    ReservationState,
    UpgradeFacts,
)

PEER = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
TCP = f"/ip4/10.0.0.2/tcp/4001/p2p/{PEER}"
WS = f"/ip4/10.0.0.2/tcp/4002/ws/p2p/{PEER}"
CIRCUIT = f"/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWRelay/p2p-circuit/p2p/{PEER}"


def samples(metrics) -> dict[tuple[str, frozenset], float]:
    """Every sample of a registry (or WatchMetrics), read back through prometheus_client's own text
    parser from the exposition itself, keyed by name and labels."""
    registry = getattr(metrics, "registry", metrics)
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(metrics, name: str, **labels) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def names_with(metrics, name: str, **labels) -> list[dict]:
    """The labelsets of NAME's samples that include LABELS."""
    return [dict(ls) for (n, ls), _ in samples(metrics).items()
            if n == name and set(labels.items()) <= set(ls)]


def peer_obs(target="p1", *, listen=(TCP, WS, CIRCUIT), dials=None, ok=True, agent="js-libp2p/3.3.11",
             phases=(("dial", 0.02), ("identify", 0.05))) -> Observation:
    if dials is None:
        dials = tuple(AddrDial(a, transport_of(a), None, ok=ok, reached=ok, secured=ok) for a in listen
                      if "/p2p-circuit" not in a)
    return Observation(module=Module.PEER, target=target, ok=ok, started_unix_s=1000.0, duration_s=0.5,
                       phases=tuple(Phase(n, s) for n, s in phases), failed_phase=None if ok else "dial",
                       error_kind=None if ok else "refused",
                       peer=PeerFacts(agent=agent, listen_addrs=tuple(listen), identified=True, dials=dials))


def test_transport_of():
    assert transport_of(TCP) == "tcp"
    assert transport_of(WS) == "ws"
    assert transport_of("/dns4/example.org/tcp/443/wss/p2p/X") == "wss"
    assert transport_of("/dns4/example.org/tcp/443/tls/ws") == "wss"
    assert transport_of(CIRCUIT) == "p2p-circuit"
    assert transport_of(CIRCUIT.replace("/p2p-circuit/", "/p2p-circuit/webrtc/")) == "webrtc"
    assert transport_of("/ip4/1.2.3.4/udp/1/quic-v1") == "quic-v1"
    assert transport_of("/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/uEi") == "webtransport"
    assert transport_of("/ip4/1.2.3.4/udp/1/webrtc-direct/certhash/uEi") == "webrtc-direct"
    assert transport_of("/dns4/tcp/tcp/1") == "tcp"  # a value that looks like a protocol name is a value
    assert transport_of("/ip4/1.2.3.4/udp/1") == "other"
    assert transport_of("") == "other"


def test_a_probe_sets_success_duration_phases_and_counters():
    m = WatchMetrics()
    m.observe(peer_obs())
    assert value(m, "p2pdiag_probe_success", module="peer", target="p1") == 1.0
    assert value(m, "p2pdiag_probe_duration_seconds", module="peer", target="p1") == 0.5
    assert value(m, "p2pdiag_probe_last_timestamp_seconds", module="peer", target="p1") == 1000.5
    assert value(m, "p2pdiag_probe_phase_duration_seconds", module="peer", target="p1", phase="identify") == 0.05
    assert value(m, "p2pdiag_probes_total", module="peer", target="p1", result="success") == 1.0
    m.observe(peer_obs(ok=False, phases=(("dial", 0.3),)))
    assert value(m, "p2pdiag_probe_success", module="peer", target="p1") == 0.0
    assert value(m, "p2pdiag_probes_total", module="peer", target="p1", result="failure") == 1.0
    assert value(m, "p2pdiag_probe_failures_total", module="peer", target="p1", phase="dial", kind="refused") == 1.0
    # the last probe's phases only: identify did not run this time
    assert value(m, "p2pdiag_probe_phase_duration_seconds", module="peer", target="p1", phase="identify") is None
    assert value(m, "p2pdiag_probe_phase_duration_seconds", module="peer", target="p1", phase="dial") == 0.3
    # the histogram keeps every probe's phases, per module and phase, with no target label
    assert value(m, "p2pdiag_phase_duration_seconds_count", module="peer", phase="dial") == 2.0
    assert value(m, "p2pdiag_phase_duration_seconds_bucket", module="peer", phase="dial", le="0.025") == 1.0
    assert all("target" not in ls for ls in names_with(m, "p2pdiag_phase_duration_seconds_count"))
    timed_out = Observation(module=Module.PEER, target="p1", ok=False, started_unix_s=1.0, duration_s=10.0,
                            timed_out=True)
    m.observe(timed_out)
    assert value(m, "p2pdiag_probes_total", module="peer", target="p1", result="timeout") == 1.0
    assert value(m, "p2pdiag_probe_failures_total", module="peer", target="p1", phase="unknown", kind="timeout") == 1.0


def test_a_vanished_address_takes_its_series_with_it():
    m = WatchMetrics()
    m.observe(peer_obs())
    assert value(m, "p2pdiag_peer_address_up", target="p1", addr=WS, transport="ws", via="direct") == 1.0
    assert value(m, "p2pdiag_peer_address_announced", target="p1", addr=WS, transport="ws") == 1.0
    assert value(m, "p2pdiag_peer_listen_addresses", target="p1", transport="ws") == 1.0
    assert value(m, "p2pdiag_peer_circuit_addresses", target="p1") == 1.0
    m.observe(peer_obs(listen=(TCP,)))  # the WebSocket and the /p2p-circuit address are gone
    assert value(m, "p2pdiag_peer_address_up", target="p1", addr=WS, transport="ws", via="direct") is None
    assert value(m, "p2pdiag_peer_address_announced", target="p1", addr=WS, transport="ws") is None
    assert value(m, "p2pdiag_peer_address_up", target="p1", addr=TCP, transport="tcp", via="direct") == 1.0
    # per transport the count stays, at 0, so an alert compares it with an hour ago
    assert value(m, "p2pdiag_peer_listen_addresses", target="p1", transport="ws") == 0.0
    assert value(m, "p2pdiag_peer_listen_addresses", target="p1", transport="p2p-circuit") == 0.0
    assert value(m, "p2pdiag_peer_circuit_addresses", target="p1") == 0.0
    # only the transports this peer ever had
    assert {ls["transport"] for ls in names_with(m, "p2pdiag_peer_listen_addresses", target="p1")} == {
        "tcp", "ws", "p2p-circuit"}
    assert set(TRANSPORTS) >= {"tcp", "ws", "p2p-circuit"}
    # a peer that does not answer identify has no listen addresses to count: the counts go
    m.observe(Observation(module=Module.PEER, target="p1", ok=False, started_unix_s=1.0, duration_s=1.0,
                          peer=PeerFacts(identified=False)))
    assert names_with(m, "p2pdiag_peer_listen_addresses", target="p1") == []
    assert value(m, "p2pdiag_peer_identified", target="p1") == 0.0


def test_relayed_dials_are_labelled_by_the_relay_and_untried_ones_are_not_series():
    dials = (AddrDial(TCP, "tcp", None, ok=False, reached=True, secured=False, failed_phase="secure"),
             AddrDial(f"/p2p/{PEER}", "p2p-circuit", "relay-a", ok=True, reached=True, secured=True),
             AddrDial("/ip4/10.0.0.2/udp/1/quic-v1", "quic-v1", None, ok=False, reached=False, secured=False,
                      tried=False))
    m = WatchMetrics()
    m.observe(peer_obs(listen=(TCP,), dials=dials))
    up = {(ls["addr"], ls["via"]): v for (n, lsf), v in samples(m).items()
          if n == "p2pdiag_peer_address_up" for ls in [dict(lsf)]}
    assert up == {(TCP, "direct"): 0.0, (f"/p2p/{PEER}", "relay-a"): 1.0}


def test_agent_changes_replace_the_info_series_and_long_labels_are_cut():
    m = WatchMetrics()
    m.observe(peer_obs(agent="js-libp2p/3.3.10"))
    m.observe(peer_obs(agent="js-libp2p/3.3.11"))
    assert [ls["agent"] for ls in names_with(m, "p2pdiag_peer_info", target="p1")] == ["js-libp2p/3.3.11"]
    m.observe(peer_obs(agent="x" * 100_000))
    [agent] = [ls["agent"] for ls in names_with(m, "p2pdiag_peer_info", target="p1")]
    assert len(agent) == MAX_LABEL_CHARS and agent.endswith("…")


def test_a_hostile_peer_announcing_thousands_of_addresses_costs_a_bounded_number_of_series():
    many = tuple(f"/ip4/10.0.{i // 250}.{i % 250}/tcp/{1000 + i}/p2p/{PEER}" for i in range(10_000))
    m = WatchMetrics()
    m.observe(peer_obs(listen=many))
    assert len(names_with(m, "p2pdiag_peer_address_announced", target="p1")) == MAX_ADDRS_PER_TARGET
    assert len(names_with(m, "p2pdiag_peer_address_up", target="p1")) == MAX_ADDRS_PER_TARGET
    assert value(m, "p2pdiag_peer_listen_addresses", target="p1", transport="tcp") == 10_000.0


def test_series_stay_flat_over_many_probes_of_200_targets_with_rotating_addresses():
    """Memory flat over time: round 50 holds as many series as round 2, addresses changing every round."""
    m = WatchMetrics()

    def round_(r: int) -> None:
        for t in range(200):
            listen = (f"/ip4/10.1.{t % 250}.{r % 250}/tcp/{4000 + r}/p2p/{PEER}", WS)
            m.observe(peer_obs(f"peer-{t}", listen=listen, ok=r % 3 != 0))

    round_(0)
    round_(1)
    after_two = len(samples(m))
    for r in range(2, 50):
        round_(r)
    assert len(samples(m)) == after_two
    # and the bookkeeping behind them stays as small
    assert sum(len(s) for s in m._series.values()) <= 200 * 40


def test_observe_costs_linear_work_and_flat_memory_in_addresses():
    def observe_cost(n: int):
        obs = peer_obs(listen=tuple(f"/ip4/10.0.{i // 250}.{i % 250}/tcp/1/p2p/{PEER}" for i in range(n)))
        m = WatchMetrics()
        return cost(lambda: m.observe(obs))

    c4, c8, c16 = observe_cost(4000), observe_cost(8000), observe_cost(16000)
    assert c16.lines - c8.lines <= 2.2 * (c8.lines - c4.lines), (c4.lines, c8.lines, c16.lines)  # linear
    assert c16.peak_bytes <= 1.2 * c4.peak_bytes + 4096, (c4.peak_bytes, c16.peak_bytes)  # series capped


def test_reservation_up_expiry_refreshes_and_losses():
    m = WatchMetrics()
    m.reservation(ReservationState("r1", up=True, at_unix_s=10.0, expiry_unix_s=3610.0, limit_duration_s=120,
                                   limit_data_bytes=131072))
    assert value(m, "p2pdiag_relay_reservation_up", target="r1") == 1.0
    assert value(m, "p2pdiag_relay_reservation_expiry_timestamp_seconds", target="r1") == 3610.0
    assert value(m, "p2pdiag_relay_reservation_losses_total", target="r1") == 0.0
    assert value(m, "p2pdiag_relay_limit_duration_seconds", target="r1") == 120.0
    assert value(m, "p2pdiag_relay_limit_data_bytes", target="r1") == 131072.0
    m.reservation(ReservationState("r1", up=True, at_unix_s=20.0, expiry_unix_s=3620.0, refreshes=1))
    m.reservation(ReservationState("r1", up=True, at_unix_s=30.0, expiry_unix_s=3630.0, refreshes=2))
    assert value(m, "p2pdiag_relay_reservation_refreshes_total", target="r1") == 2.0
    m.reservation(ReservationState("r1", up=False, at_unix_s=40.0, refreshes=2, error_kind="closed"))
    assert value(m, "p2pdiag_relay_reservation_up", target="r1") == 0.0
    assert value(m, "p2pdiag_relay_reservation_expiry_timestamp_seconds", target="r1") is None
    assert value(m, "p2pdiag_relay_reservation_losses_total", target="r1") == 1.0
    m.reservation(ReservationState("r1", up=False, at_unix_s=50.0, refreshes=2))  # still down: no second loss
    assert value(m, "p2pdiag_relay_reservation_losses_total", target="r1") == 1.0
    m.reservation(ReservationState("r1", up=True, at_unix_s=60.0, expiry_unix_s=3660.0, refreshes=0))  # made again
    m.reservation(ReservationState("r1", up=True, at_unix_s=70.0, expiry_unix_s=3670.0, refreshes=1))
    assert value(m, "p2pdiag_relay_reservation_refreshes_total", target="r1") == 3.0
    assert value(m, "p2pdiag_relay_reservation_up", target="r1") == 1.0


def test_relay_probe_facts():
    m = WatchMetrics()
    facts = RelayFacts(agent="go-libp2p/0.41", hop_offered=True, reservation_status="RESERVATION_REFUSED",
                       limit_duration_s=120_000, limit_data_bytes=4096, reservation_expiry_unix_s=99.0)
    m.observe(Observation(module=Module.RELAY, target="r1", ok=False, started_unix_s=1.0, duration_s=0.1,
                          failed_phase="reserve", error_kind="RESERVATION_REFUSED", relay=facts))
    assert value(m, "p2pdiag_relay_hop_offered", target="r1") == 1.0
    assert value(m, "p2pdiag_relay_reserve_accepted", target="r1") == 0.0
    assert value(m, "p2pdiag_relay_limit_duration_seconds", target="r1") == 120_000.0
    assert value(m, "p2pdiag_relay_info", target="r1", agent="go-libp2p/0.41") == 1.0
    # the held reservation's expiry comes from reservation(), not from one probe's RESERVE
    assert value(m, "p2pdiag_relay_reservation_expiry_timestamp_seconds", target="r1") is None


def test_upgrade_outcomes_by_outcome_and_cause():
    m = WatchMetrics()

    def up(outcome, causes, code):
        m.observe(Observation(module=Module.UPGRADE, target="u1", ok=outcome == "upgraded", started_unix_s=1.0,
                              duration_s=2.0, upgrade=UpgradeFacts(outcome=outcome, causes=causes, exit_code=code)))

    up("upgraded", (), 0)
    up("relayed-only", ("webrtc-ice-failed", "udp-blocked-remote"), 3)
    up("relayed-only", ("webrtc-ice-failed",), 3)
    assert value(m, "p2pdiag_upgrade_outcomes_total", target="u1", outcome="upgraded", cause="none") == 1.0
    assert value(m, "p2pdiag_upgrade_outcomes_total", target="u1", outcome="relayed-only",
                 cause="webrtc-ice-failed") == 2.0
    assert names_with(m, "p2pdiag_upgrade_outcome", target="u1") == [
        {"target": "u1", "outcome": "relayed-only", "cause": "webrtc-ice-failed"}]
    assert value(m, "p2pdiag_upgrade_exit_code", target="u1") == 3.0


def gossip_obs(delivered: int, sent: int = 4, mesh=None, subscribed=None) -> Observation:
    canaries = tuple(CanaryResult("a" if i % 2 else "b", i, i < delivered, 0.04 * (i + 1) if i < delivered else None)
                     for i in range(sent))
    g = GossipFacts(canaries=canaries, mesh_peers=mesh if mesh is not None else {"a": 3, "b": 2},
                    topic_peers={"a": 5, "b": 5}, subscribed=subscribed if subscribed is not None else {PEER: True})
    return Observation(module=Module.GOSSIPSUB, target="g1", ok=delivered == sent, started_unix_s=1.0,
                       duration_s=1.0, gossip=g)


def test_gossipsub_canaries_ratio_latency_and_mesh():
    m = WatchMetrics()
    m.observe(gossip_obs(4))
    m.observe(gossip_obs(1, mesh={"a": 1}, subscribed={PEER: False}))
    assert value(m, "p2pdiag_gossipsub_canaries_sent_total", target="g1") == 8.0
    assert value(m, "p2pdiag_gossipsub_canaries_delivered_total", target="g1") == 5.0
    assert value(m, "p2pdiag_gossipsub_delivery_ratio", target="g1") == 0.25  # the last probe's
    assert value(m, "p2pdiag_gossipsub_canary_latency_seconds_count", target="g1") == 5.0
    assert value(m, "p2pdiag_gossipsub_canary_latency_seconds_bucket", target="g1", le="0.05") == 2.0
    assert value(m, "p2pdiag_gossipsub_mesh_peers", target="g1", light_peer="a") == 1.0
    assert value(m, "p2pdiag_gossipsub_mesh_peers", target="g1", light_peer="b") is None  # b left the mesh
    assert value(m, "p2pdiag_gossipsub_subscribed", target="g1", peer_id=PEER) == 0.0


def test_events_targets_shard_and_forgetting_a_target():
    m = WatchMetrics()
    m.observe(peer_obs("p1"))
    m.observe(peer_obs("p2"))
    m.reservation(ReservationState("r1", up=True, at_unix_s=1.0, expiry_unix_s=2.0))
    m.event("address-gone", "p1")
    m.event("address-gone", "p1")
    m.event("reservation-lost", "r1")
    assert value(m, "p2pdiag_watch_events_total", kind="address-gone", target="p1") == 2.0
    targets = [PeerTarget(name="p2", interval_s=30, timeout_s=10, peer_id=PEER),
               GossipTarget(name="g1", interval_s=30, timeout_s=10, topic="t", attach=("/a", "/b"))]
    m.targets(targets, "2/3")
    assert value(m, "p2pdiag_watch_targets", module="peer") == 1.0
    assert value(m, "p2pdiag_watch_targets", module="gossipsub") == 1.0
    assert value(m, "p2pdiag_watch_targets", module="relay") == 0.0
    assert names_with(m, "p2pdiag_watch_shard_info") == [{"index": "2", "count": "3"}]
    left = samples(m)
    assert not [k for k in left if ("target", "p1") in k[1] or ("target", "r1") in k[1]]
    assert value(m, "p2pdiag_probe_success", module="peer", target="p2") == 1.0
    m.targets(targets)  # the whole config again
    assert names_with(m, "p2pdiag_watch_shard_info") == [{"index": "1", "count": "1"}]


@pytest.mark.parametrize("ok", [True, False])
def test_probe_registry_is_fresh_and_blackbox_shaped(ok):
    obs = peer_obs(ok=ok)
    reg = probe_registry(obs)
    got = samples(reg)
    assert got[("probe_success", frozenset())] == float(ok)
    assert got[("probe_duration_seconds", frozenset())] == 0.5
    assert got[("probe_phase_duration_seconds", frozenset({("phase", "dial")}))] == 0.02
    assert got[("probe_peer_listen_addresses", frozenset({("transport", "ws")}))] == 1.0
    failure = [dict(k[1]) for k in got if k[0] == "probe_failure_info"]
    assert failure == ([] if ok else [{"phase": "dial", "kind": "refused"}])
    assert not [k for k in got if any(name == "target" for name, _ in k[1])]
    assert samples(probe_registry(obs)) == got  # each call a new registry, nothing carried over
    assert probe_registry(obs) is not reg


def test_probe_registry_of_a_gossipsub_probe():
    got = samples(probe_registry(gossip_obs(3)))
    assert got[("probe_gossipsub_canaries_sent", frozenset())] == 4.0
    assert got[("probe_gossipsub_canaries_delivered", frozenset())] == 3.0
    assert got[("probe_gossipsub_delivery_ratio", frozenset())] == 0.75
    assert got[("probe_gossipsub_canary_latency_max_seconds", frozenset())] == pytest.approx(0.12)


def test_every_series_is_documented():
    page = (Path(__file__).resolve().parents[2] / "docs" / "watch-metrics.md").read_text()
    m = WatchMetrics()
    names = [fam.name + ("_total" if fam.type == "counter" else "") for fam in m.registry.collect()]
    names += [f"probe_{f.name}" for f in FACTS]
    missing = [n for n in names if f"`{n}" not in page]
    assert not missing, f"docs/watch-metrics.md does not name: {missing}"
