"""Debian's real Prometheus scraping watch's real HTTP server (`p2pdiag/watch/http.py`) on loopback:
`/metrics` from a real `WatchMetrics`, and `/probe` through the blackbox relabelling operators use,
with the shipped alerting rules loaded. Every value is read back through Prometheus' HTTP API.

Two tests. `test_prometheus_scrapes_a_real_watch_of_a_real_relay` is the whole thing: a real
`p2pdiag watch` process watching a real py-libp2p relay and a peer, its /probe running the real relay
probe, the relay then killed. `test_prometheus_scrapes_metrics_and_probe` checks pure HTTP and
exposition semantics that a real fleet cannot make on demand (an address vanishing from a peer's
series, a canary histogram, a relay announcing an implausible limit so a shipped rule fires, the
scrape-timeout header reaching the probe as its budget): it feeds `WatchMetrics` constructed
`Observation`s and its /probe runs `canned_probe`, a stand-in answering a constructed Observation.
"""

from __future__ import annotations

import sys
import threading
from functools import partial
from pathlib import Path

import pytest
import trio
from support import prometheus as prom

from p2pdiag.watch.http import Limits, parse_target, serve
from p2pdiag.watch.metrics import WatchMetrics
from p2pdiag.watch.model import (
    AddrDial,
    CanaryResult,
    GossipFacts,
    Module,
    Observation,
    PeerFacts,
    Phase,
    RelayFacts,
    ReservationState,
)

pytestmark = pytest.mark.skipif(prom.BINARY is None, reason="prometheus missing: scripts/setup-system.sh installs it")

PEER = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
GOOD_RELAY = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
BAD_RELAY = "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
TCP = f"/ip4/10.0.0.2/tcp/4001/p2p/{PEER}"
WS = f"/ip4/10.0.0.2/tcp/4002/ws/p2p/{PEER}"
RULES = Path(__file__).resolve().parents[2] / "p2pdiag" / "watch" / "alerts" / "p2pdiag-rules.yml"


def canned_probe():
    """A run_probe stand-in, for the HTTP semantics only (the real probe is exercised by
    test_prometheus_scrapes_a_real_watch_of_a_real_relay): GOOD_RELAY succeeds, any other target fails
    at RESERVE; it records the budget each request gave the target, which no real probe exposes."""
    budgets: list[float] = []

    async def run_probe(target):
        budgets.append(target.timeout_s)
        ok = target.name == GOOD_RELAY
        return Observation(module=Module.RELAY, target=target.name, ok=ok, started_unix_s=1.0e9, duration_s=0.03,
                           phases=(Phase("relay-dial", 0.01), Phase("reserve", 0.02)),
                           failed_phase=None if ok else "reserve", error_kind=None if ok else "RESERVATION_REFUSED",
                           relay=RelayFacts(agent="go-libp2p", hop_offered=True,
                                            reservation_status="OK" if ok else "RESERVATION_REFUSED"))

    run_probe.budgets = budgets  # type: ignore[attr-defined]
    return run_probe


def peer_obs(listen: tuple[str, ...]) -> Observation:
    dials = tuple(AddrDial(a, "ws" if "/ws/" in a else "tcp", None, ok=True, reached=True, secured=True)
                  for a in listen)
    return Observation(module=Module.PEER, target="node-1", ok=True, started_unix_s=1.0e9, duration_s=0.2,
                       phases=(Phase("dial", 0.01), Phase("identify", 0.04)),
                       peer=PeerFacts(agent="js-libp2p/3.3.11", listen_addrs=listen, identified=True, dials=dials))


class Server:
    """watch's server in a trio run of its own thread (the test's thread polls Prometheus)."""

    def __init__(self, metrics: WatchMetrics, run_probe) -> None:
        self.metrics, self.run_probe = metrics, run_probe
        self.port: int | None = None
        self.ready = threading.Event()
        self.token: trio.lowlevel.TrioToken | None = None
        self.cancel: trio.CancelScope | None = None
        self.thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self.cancel:
            async with trio.open_nursery() as nursery:
                self.port = await nursery.start(partial(serve, limits=Limits()), ("127.0.0.1", 0), self.metrics,
                                                parse_target, self.run_probe)
                self.ready.set()

    def __enter__(self) -> Server:
        self.thread.start()
        assert self.ready.wait(30), "watch's server did not start"
        return self

    def call(self, fn, *args) -> None:
        """Run FN in the server's trio thread, between requests (as watch's scheduler would)."""
        assert self.token is not None
        trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    def __exit__(self, *exc) -> None:
        assert self.token is not None and self.cancel is not None
        trio.from_thread.run_sync(self.cancel.cancel, trio_token=self.token)
        self.thread.join(10)


def test_prometheus_scrapes_metrics_and_probe(tmp_path):
    """Pure HTTP and exposition semantics, with a stand-in probe (`canned_probe`) and constructed
    observations, not real peers: series that go stale, the timeout header as the probe's budget, the
    relabelling, a 400 for an unknown module, the shipped rules loading and firing on chosen values."""
    metrics = WatchMetrics()
    probe = canned_probe()
    with Server(metrics, probe) as server:
        server.call(metrics.observe, peer_obs((TCP, WS)))
        server.call(metrics.reservation, ReservationState("js-relay", up=True, at_unix_s=1.0e9, expiry_unix_s=2.0e9,
                                                          limit_duration_s=120_000, limit_data_bytes=131072))
        canaries = tuple(CanaryResult("a", i, True, 0.05) for i in range(3))
        server.call(metrics.observe, Observation(module=Module.GOSSIPSUB, target="chat", ok=True, started_unix_s=1.0e9,
                                                 duration_s=1.0, gossip=GossipFacts(canaries=canaries)))
        exporter = f"127.0.0.1:{server.port}"
        jobs = [prom.metrics_job("watch", exporter),
                prom.probe_job("p2pdiag-relay", exporter, "relay", [GOOD_RELAY, BAD_RELAY]),
                prom.probe_job("p2pdiag-dns", exporter, "dns", [GOOD_RELAY])]
        with prom.Prometheus(tmp_path, jobs, rule_files=(RULES,)) as p:
            # /metrics: gauges, a histogram's _count, a counter
            p.wait_for("node-1's probe_success", lambda: p.value('p2pdiag_probe_success{target="node-1"}') == 1.0)
            assert p.value(f'p2pdiag_peer_address_up{{target="node-1",addr="{WS}"}}') == 1.0
            assert p.value('p2pdiag_phase_duration_seconds_count{module="peer",phase="identify"}') == 1.0
            assert p.value('p2pdiag_gossipsub_canary_latency_seconds_count{target="chat"}') == 3.0
            assert p.value('p2pdiag_gossipsub_delivery_ratio{target="chat"}') == 1.0
            assert p.value('p2pdiag_relay_reservation_up{target="js-relay"}') == 1.0

            # the WebSocket address vanishes: its series goes stale in Prometheus, the tcp one stays
            server.call(metrics.observe, peer_obs((TCP,)))
            p.wait_for("the vanished address's series gone",
                       lambda: p.query(f'p2pdiag_peer_address_up{{target="node-1",addr="{WS}"}}') == [])
            assert p.value(f'p2pdiag_peer_address_up{{target="node-1",addr="{TCP}"}}') == 1.0
            assert p.value('p2pdiag_peer_listen_addresses{target="node-1",transport="ws"}') == 0.0
            assert p.value('p2pdiag_phase_duration_seconds_count{module="peer",phase="identify"}') == 2.0

            # /probe through the blackbox relabelling: instance is the relay, success per target
            p.wait_for("probe_success of both relays", lambda: len(p.query('probe_success{job="p2pdiag-relay"}')) == 2)
            assert p.value(f'probe_success{{job="p2pdiag-relay",instance="{GOOD_RELAY}"}}') == 1.0
            assert p.value(f'probe_success{{job="p2pdiag-relay",instance="{BAD_RELAY}"}}') == 0.0
            # a failed probe is no failed scrape
            assert p.value(f'up{{job="p2pdiag-relay",instance="{BAD_RELAY}"}}') == 1.0
            assert p.value(f'probe_phase_duration_seconds{{instance="{GOOD_RELAY}",phase="reserve"}}') == 0.02
            assert p.value(f'probe_failure_info{{instance="{BAD_RELAY}",kind="RESERVATION_REFUSED"}}') == 1.0
            # Prometheus sent X-Prometheus-Scrape-Timeout-Seconds: 1; the probe got it minus the 0.5 s offset
            assert probe.budgets and set(probe.budgets) == {0.5}

            # an unknown module: the scrape fails with the 400
            dns = p.wait_for("the dns job scraped", lambda: [
                t for t in p.targets() if t["labels"]["job"] == "p2pdiag-dns" and t["lastError"]])
            assert "400" in dns[0]["lastError"] and dns[0]["health"] == "down"

            # the shipped rules load and evaluate on the real series: the js relay's 120000 s limit fires
            groups = p.api("rules")["groups"]
            assert sum(len(g["rules"]) for g in groups) == 10
            firing = p.wait_for("the implausible duration alert", lambda: [
                a for a in p.api("alerts")["alerts"]
                if a["labels"]["alertname"] == "P2pdiagRelayImplausibleDurationLimit" and a["state"] == "firing"])
            assert [a["labels"]["target"] for a in firing] == ["js-relay"]


def test_prometheus_scrapes_a_real_watch_of_a_real_relay(spawn, py_relay, tmp_path):
    """Debian's prometheus scrapes a real `p2pdiag watch` process watching a real py-libp2p relay (held
    reservation) and a second relay probed as a peer: /metrics, and /probe?module=relay through the
    blackbox relabelling. Then the relay is killed (SIGKILL): /probe says probe_success 0 and /metrics
    the reservation down, within a few scrapes; /probe?module=bogus is a 400, the target down."""
    relay = py_relay(ws=False)
    other = py_relay(ws=False)
    relay_addr = relay.addr("tcp")
    config = tmp_path / "fleet.toml"
    config.write_text(f'''
interval = 2
timeout = 1.5

[[relay]]
name = "relay"
addr = "{relay_addr}"

[[peer]]
name = "other"
addrs = ["{other.addr("tcp")}"]
''')
    watch = spawn([sys.executable, "-m", "p2pdiag", "watch", str(config), "--metrics", "127.0.0.1:0"], "p2pdiag watch")
    exporter = prom.watch_url(watch).removeprefix("http://").rstrip("/")
    relay_job = prom.probe_job("p2pdiag-relay", exporter, "relay", [relay_addr], scrape_timeout="2s")
    relay_job["scrape_interval"] = "2s"
    jobs = [prom.metrics_job("watch", exporter), relay_job,
            prom.probe_job("p2pdiag-bogus", exporter, "bogus", [relay_addr])]
    with prom.Prometheus(tmp_path, jobs) as p:
        probe_success = f'probe_success{{job="p2pdiag-relay",instance="{relay_addr}"}}'
        p.wait_for("the real relay's probe_success 1 via /probe", lambda: p.value(probe_success) == 1.0)
        p.wait_for("the watched relay's probe_success", lambda: p.value(
            'p2pdiag_probe_success{module="relay",target="relay"}') == 1.0)
        p.wait_for("the peer's probe_success", lambda: p.value(
            'p2pdiag_probe_success{module="peer",target="other"}') == 1.0)
        p.wait_for("the held reservation", lambda: p.value('p2pdiag_relay_reservation_up{target="relay"}') == 1.0)
        assert p.value(f'up{{job="p2pdiag-relay",instance="{relay_addr}"}}') == 1.0

        bogus = p.wait_for("the bogus module's scrape", lambda: [
            t for t in p.targets() if t["labels"]["job"] == "p2pdiag-bogus" and t["lastError"]])
        assert "400" in bogus[0]["lastError"] and bogus[0]["health"] == "down"
        assert p.value('up{job="p2pdiag-bogus"}') == 0.0

        assert relay.proc is not None
        relay.proc.popen.kill()
        relay.proc.popen.wait(10)
        # a scrape every 2 s (/probe) and 1 s (/metrics); the holder sees the connection close at once
        p.wait_for("probe_success 0 for the killed relay", lambda: p.value(probe_success) == 0.0, timeout=12)
        assert p.value(f'up{{job="p2pdiag-relay",instance="{relay_addr}"}}') == 1.0  # a failed probe, a good scrape
        p.wait_for("the reservation down", lambda: p.value('p2pdiag_relay_reservation_up{target="relay"}') == 0.0,
                   timeout=12)
        p.wait_for("the watched relay's probe failing", lambda: p.value(
            'p2pdiag_probe_success{module="relay",target="relay"}') == 0.0, timeout=12)
        assert p.value('p2pdiag_probe_success{module="peer",target="other"}') == 1.0
    assert watch.popen.poll() is None, "".join(watch.stderr)[-3000:]
