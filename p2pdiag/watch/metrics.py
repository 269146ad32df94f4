"""What watch has seen, as Prometheus metrics: `/metrics` (`WatchMetrics`) and one `/probe` (`probe_registry`).

Exposition is prometheus_client's own (`generate_latest` over a `CollectorRegistry`), never text
written here. Two exposures share one reading of an observation (`facts`): `/metrics` keeps the
last facts of every target under the `p2pdiag_` prefix with a `target` label, plus counters and
histograms over time; a `/probe` answer is a fresh registry per request with blackbox_exporter's
`probe_*` names and no target label (Prometheus relabels the target into `instance`).

A fact that is no longer true is removed, not left at its last value: when a peer stops announcing
an address, or a light peer is no longer in the mesh, the labelset goes, so memory stays flat over
hours and a stale series never says something the last probe did not see. Every label value a peer
controls (agent, address) is cut to a bounded length, and a target keeps at most
`MAX_ADDRS_PER_TARGET` per-address series (the per-transport counts still count every address).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from p2pdiag import __version__
from p2pdiag.watch.model import AnyTarget, Module, Observation, ReservationState, protocol_names

PREFIX = "p2pdiag_"
MAX_LABEL_CHARS = 128  # an agent string or a multiaddr a peer sends may be long; a label stays short
MAX_ADDRS_PER_TARGET = 64  # per-address series kept per target (a hostile identify may list thousands)
MAX_WATCHED_PER_TARGET = 64  # watched subscriptions and light peers per gossipsub target

# Listen addresses are counted per transport, one of these (an address fitting none is "other").
# On /metrics a transport once seen for a target stays, at 0 when its addresses all vanished, for
# as long as the peer answers identify: an alert compares that 0 with an hour ago.
TRANSPORTS = ("tcp", "ws", "wss", "quic", "quic-v1", "webtransport", "webrtc-direct", "webrtc", "p2p-circuit", "other")

PHASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CANARY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# multiaddr protocols that take no value (the rest are /name/value)

def label(text: str, cap: int = MAX_LABEL_CHARS) -> str:
    """TEXT as a label value: at most CAP characters (cut ones end with '…')."""
    return text if len(text) <= cap else text[: cap - 1] + "…"


def transport_of(addr: str) -> str:
    """The transport a multiaddr's text names, one of TRANSPORTS: the outermost that matters, so
    `…/p2p-circuit/webrtc/p2p/X` is "webrtc" and `…/tcp/443/tls/ws` is "wss"."""
    names = set(protocol_names(addr))
    for name in ("webtransport", "webrtc-direct", "webrtc", "p2p-circuit", "quic-v1", "quic"):
        if name in names:
            return name
    if "wss" in names or ("ws" in names and "tls" in names):
        return "wss"
    if "ws" in names:
        return "ws"
    if "tcp" in names:
        return "tcp"
    return "other"


# --- a module's facts, shared by /metrics and /probe ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Fact:
    """One gauge of a module's facts: named without prefix, labels without `target`."""

    name: str
    doc: str
    labels: tuple[str, ...] = ()
    probe_only: bool = False  # /metrics has a counter or a histogram for it instead


FACTS: tuple[Fact, ...] = (
    Fact("relay_info", "The relay's identify agent (value 1).", ("agent",)),
    Fact("relay_hop_offered", "1 if the relay's identify lists the HOP protocol, 0 if not (absent: no identify)."),
    Fact("relay_reserve_accepted", "1 if the probe's RESERVE got Status OK, 0 if refused (absent: not tried)."),
    Fact("relay_limit_duration_seconds", "The circuit duration limit the relay announced (0: none)."),
    Fact("relay_limit_data_bytes", "The circuit data limit the relay announced (0: none)."),
    Fact("relay_reservation_expiry_timestamp_seconds", "When the probe's reservation expires (UNIX time).",
         probe_only=True),
    Fact("peer_identified", "1 if the peer answered identify in the last probe."),
    Fact("peer_info", "The peer's identify agent (value 1).", ("agent",)),
    Fact("peer_listen_addresses", "Listen addresses the peer's identify announced, per transport.", ("transport",)),
    Fact("peer_circuit_addresses", "Announced listen addresses with /p2p-circuit (reachable through a relay)."),
    Fact("peer_address_announced", "1 for each listen address the peer announced.", ("addr", "transport")),
    Fact("peer_address_up", "1 if a dial of the address connected, secured and identified, else 0; via is "
         "'direct' or the relay dialed through.", ("addr", "transport", "via")),
    Fact("upgrade_outcome", "The last upgrade dial's outcome and headline cause (value 1).", ("outcome", "cause")),
    Fact("upgrade_exit_code", "The exit code `p2pdiag dial` would give for the last upgrade dial."),
    Fact("gossipsub_canaries_sent", "Canaries published in the probe.", probe_only=True),
    Fact("gossipsub_canaries_delivered", "Canaries the other light peer received in the probe.", probe_only=True),
    Fact("gossipsub_canary_latency_max_seconds", "The slowest delivered canary, publish to receipt.",
         probe_only=True),
    Fact("gossipsub_delivery_ratio", "Delivered over sent canaries in the last probe (0 to 1)."),
    Fact("gossipsub_mesh_peers", "A light peer's mesh size on the topic.", ("light_peer",)),
    Fact("gossipsub_topic_peers", "Peers a light peer knows subscribed to the topic.", ("light_peer",)),
    Fact("gossipsub_subscribed", "1 if a light peer saw the watched peer subscribed to the topic.", ("peer_id",)),
)
_FACT = {f.name: f for f in FACTS}

Sample = tuple[Fact, tuple[str, ...], float]


def _relay_facts(obs: Observation) -> Iterator[Sample]:
    r = obs.relay
    if r is None:
        return
    if r.agent is not None:
        yield _FACT["relay_info"], (label(r.agent),), 1.0
    if r.hop_offered is not None:
        yield _FACT["relay_hop_offered"], (), float(r.hop_offered)
    if r.reservation_status is not None:
        yield _FACT["relay_reserve_accepted"], (), float(r.reservation_status == "OK")
    if r.limit_duration_s is not None:
        yield _FACT["relay_limit_duration_seconds"], (), float(r.limit_duration_s)
    if r.limit_data_bytes is not None:
        yield _FACT["relay_limit_data_bytes"], (), float(r.limit_data_bytes)
    if r.reservation_expiry_unix_s is not None:
        yield _FACT["relay_reservation_expiry_timestamp_seconds"], (), float(r.reservation_expiry_unix_s)


def _peer_facts(obs: Observation) -> Iterator[Sample]:
    p = obs.peer
    if p is None:
        return
    yield _FACT["peer_identified"], (), float(p.identified)
    if p.agent is not None:
        yield _FACT["peer_info"], (label(p.agent),), 1.0
    if p.identified:
        per_transport: dict[str, int] = {}
        for addr in p.listen_addrs:
            transport = transport_of(addr)
            per_transport[transport] = per_transport.get(transport, 0) + 1
        for transport, n in per_transport.items():
            yield _FACT["peer_listen_addresses"], (transport,), float(n)
        yield _FACT["peer_circuit_addresses"], (), float(sum("/p2p-circuit" in a for a in p.listen_addrs))
        for addr in dict.fromkeys(p.listen_addrs[:MAX_ADDRS_PER_TARGET]):
            yield _FACT["peer_address_announced"], (label(addr), transport_of(addr)), 1.0
    seen: set[tuple[str, str, str]] = set()
    for d in p.dials:
        if not d.tried or len(seen) >= MAX_ADDRS_PER_TARGET:
            continue
        key = (label(d.addr), label(d.transport, 32), label(d.relay) if d.relay else "direct")
        if key not in seen:
            seen.add(key)
            yield _FACT["peer_address_up"], key, float(d.ok)


def _upgrade_facts(obs: Observation) -> Iterator[Sample]:
    u = obs.upgrade
    if u is None:
        return
    yield _FACT["upgrade_outcome"], (label(u.outcome, 64), label(u.causes[0] if u.causes else "none", 64)), 1.0
    yield _FACT["upgrade_exit_code"], (), float(u.exit_code)


def _gossip_facts(obs: Observation) -> Iterator[Sample]:
    g = obs.gossip
    if g is None:
        return
    yield _FACT["gossipsub_canaries_sent"], (), float(g.sent)
    yield _FACT["gossipsub_canaries_delivered"], (), float(g.delivered)
    if g.sent:
        yield _FACT["gossipsub_delivery_ratio"], (), g.delivered / g.sent
    latencies = [c.latency_s for c in g.canaries if c.delivered and c.latency_s is not None]
    if latencies:
        yield _FACT["gossipsub_canary_latency_max_seconds"], (), max(latencies)
    for name, counts in (("gossipsub_mesh_peers", g.mesh_peers), ("gossipsub_topic_peers", g.topic_peers)):
        for peer, n in list(counts.items())[:MAX_WATCHED_PER_TARGET]:
            yield _FACT[name], (label(peer, 32),), float(n)
    for peer_id, subscribed in list(g.subscribed.items())[:MAX_WATCHED_PER_TARGET]:
        yield _FACT["gossipsub_subscribed"], (label(peer_id),), float(subscribed)


def facts(obs: Observation) -> Iterator[Sample]:
    """The gauges one observation sets: (fact, label values, value), whatever its module."""
    yield from _relay_facts(obs)
    yield from _peer_facts(obs)
    yield from _upgrade_facts(obs)
    yield from _gossip_facts(obs)


def _phases(obs: Observation) -> dict[str, float]:
    """Phase name -> seconds; a repeated phase (one per address dialed) is summed."""
    out: dict[str, float] = {}
    for ph in obs.phases[:MAX_ADDRS_PER_TARGET]:
        name = label(ph.name, 32)
        out[name] = out.get(name, 0.0) + ph.seconds
    return out


def _failure(obs: Observation) -> tuple[str, str]:
    kind = obs.error_kind or ("timeout" if obs.timed_out else "other")
    return label(obs.failed_phase or "unknown", 32), label(kind, 48)


def probe_registry(obs: Observation) -> CollectorRegistry:
    """A fresh registry for one /probe answer, as blackbox_exporter builds one per request:
    `probe_success`, `probe_duration_seconds`, `probe_phase_duration_seconds{phase}`, the failure
    (`probe_failure_info{phase,kind}`) and the module's facts as `probe_<fact>`."""
    registry = CollectorRegistry(auto_describe=True)
    Gauge("probe_success", "1 if the probe succeeded, else 0.", registry=registry).set(float(obs.ok))
    Gauge("probe_duration_seconds", "How long the probe took.", registry=registry).set(obs.duration_s)
    phases = Gauge("probe_phase_duration_seconds", "How long each phase of the probe took.", ["phase"],
                   registry=registry)
    for name, seconds in _phases(obs).items():
        phases.labels(name).set(seconds)
    if not obs.ok:
        Gauge("probe_failure_info", "Where the probe failed and how (value 1).", ["phase", "kind"],
              registry=registry).labels(*_failure(obs)).set(1)
    gauges: dict[str, Gauge] = {}
    for fact, labels, value in facts(obs):
        if fact.name not in gauges:
            gauges[fact.name] = Gauge(f"probe_{fact.name}", fact.doc, fact.labels, registry=registry)
        gauge = gauges[fact.name]
        (gauge.labels(*labels) if labels else gauge).set(value)
    return registry


# --- /metrics ---------------------------------------------------------------------------------


class WatchMetrics:
    """The registry `/metrics` serves, fed by watch as probes end and states change.

    Series about one target are tracked per target, so the ones the last observation no longer
    supports are removed and `targets` drops every series of a target no longer watched."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def gauge(name: str, doc: str, labels: Sequence[str]) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=r)

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        probe = ("module", "target")
        self.probe_success = gauge("probe_success", "1 if the target's last probe succeeded, else 0.", probe)
        self.probe_duration = gauge("probe_duration_seconds", "How long the target's last probe took.", probe)
        self.probe_timestamp = gauge("probe_last_timestamp_seconds", "When the target's last probe ended (UNIX time).",
                                     probe)
        self.probe_phase = gauge("probe_phase_duration_seconds", "How long each phase of the target's last probe took.",
                                 (*probe, "phase"))
        self.phase_hist = Histogram(PREFIX + "phase_duration_seconds",
                                    "Phase durations of every probe of a module (all targets together).",
                                    ("module", "phase"), buckets=PHASE_BUCKETS, registry=r)
        self.probes = counter("probes", "Probes run, by result (success, failure, timeout; "
                                "starved: p2pdiag itself was held while the probe timed out, see watch-starved).",
                              (*probe, "result"))
        self.failures = counter("probe_failures", "Failed probes by the phase that failed and the error kind.",
                                (*probe, "phase", "kind"))
        self.reservation_up = gauge("relay_reservation_up", "1 while watch holds a reservation on the relay.",
                                    ("target",))
        self.reservation_expiry = gauge("relay_reservation_expiry_timestamp_seconds",
                                        "When the held reservation expires unless refreshed (UNIX time).", ("target",))
        self.reservation_refreshes = counter("relay_reservation_refreshes", "Reservation refreshes made.", ("target",))
        self.reservation_losses = counter("relay_reservation_losses", "Held reservations lost.", ("target",))
        self.upgrade_outcomes = counter("upgrade_outcomes", "Upgrade dials by outcome and headline cause.",
                                        ("target", "outcome", "cause"))
        self.canaries_sent = counter("gossipsub_canaries_sent", "Canaries published.", ("target",))
        self.canaries_delivered = counter("gossipsub_canaries_delivered",
                                          "Canaries the other light peer received.", ("target",))
        self.canary_latency = Histogram(PREFIX + "gossipsub_canary_latency_seconds",
                                        "Delivered canaries' latency, publish to receipt.", ("target",),
                                        buckets=CANARY_BUCKETS, registry=r)
        self.fact_gauges = {f.name: gauge(f.name, f.doc, ("target", *f.labels)) for f in FACTS if not f.probe_only}
        self.target_count = gauge("watch_targets", "Targets this instance watches, per module.", ("module",))
        self.events = counter("watch_events", "State changes the tracker named, by kind.", ("kind", "target"))
        self.shard = gauge("watch_shard_info", "This instance's shard: --shard INDEX/COUNT (value 1).",
                           ("index", "count"))
        gauge("build_info", "p2pdiag's version (value 1).", ("version",)).labels(__version__).set(1)
        for m in Module:
            self.target_count.labels(m.value).set(0)
        self.shard.labels("1", "1").set(1)

        # target -> every (metric, label values) set about it, to remove them when they stop being true
        self._series: dict[str, set[tuple[Gauge | Counter | Histogram, tuple[str, ...]]]] = {}
        # target -> the (metric, label values) the last observation's facts and phases set
        self._last: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}
        self._refreshes: dict[str, int] = {}
        self._up: dict[str, bool] = {}
        self._transports: dict[str, set[str]] = {}  # target -> transports its listen addresses ever had
        self.changes = 0  # counts every update, so a cached exposition knows it is out of date

    # --- bookkeeping

    def _track(self, target: str, metric, labels: tuple[str, ...]):
        self._series.setdefault(target, set()).add((metric, labels))
        return metric.labels(*labels)

    def _remove(self, target: str, metric, labels: tuple[str, ...]) -> None:
        self._series.get(target, set()).discard((metric, labels))
        metric.remove(*labels)  # a labelset already gone is no error

    def forget(self, target: str) -> None:
        """Remove every series about TARGET (no longer watched)."""
        self.changes += 1
        for metric, labels in self._series.pop(target, set()):
            metric.remove(*labels)
        self._last.pop(target, None)
        self._refreshes.pop(target, None)
        self._up.pop(target, None)
        self._transports.pop(target, None)

    # --- what watch reports

    def targets(self, targets: Iterable[AnyTarget], shard: str | None = None) -> None:
        """The targets this instance watches (after sharding) and its shard as `--shard` writes it
        ("K/N", K from 1; None: the whole config): sets the per-module counts and the shard info,
        and forgets every target no longer among them."""
        self.changes += 1
        targets = list(targets)
        names = {label(t.name) for t in targets}
        for name in [n for n in self._series if n not in names]:
            self.forget(name)
        for m in Module:
            self.target_count.labels(m.value).set(sum(1 for t in targets if t.module is m))
        index, _, count = (shard or "1/1").partition("/")
        self.shard.clear()
        self.shard.labels(label(index, 8), label(count or "1", 8)).set(1)

    def observe(self, obs: Observation) -> None:
        """One probe ended: its success, duration, phases, failure and facts."""
        self.changes += 1
        target, module = label(obs.target), obs.module.value
        key = (module, target)
        if obs.starved_s is not None:  # says nothing of the target: its series keep the last real probe's
            self._track(target, self.probes, (*key, "starved")).inc()
            return
        self._track(target, self.probe_success, key).set(float(obs.ok))
        self._track(target, self.probe_duration, key).set(obs.duration_s)
        self._track(target, self.probe_timestamp, key).set(obs.started_unix_s + obs.duration_s)
        result = "success" if obs.ok else ("timeout" if obs.timed_out else "failure")
        self._track(target, self.probes, (*key, result)).inc()
        if not obs.ok:
            self._track(target, self.failures, (*key, *_failure(obs))).inc()

        now: set[tuple[Gauge, tuple[str, ...]]] = set()
        for phase, seconds in _phases(obs).items():
            self._track(target, self.probe_phase, (*key, phase)).set(seconds)
            self.phase_hist.labels(module, phase).observe(seconds)
            now.add((self.probe_phase, (*key, phase)))
        for fact, labels, value in facts(obs):
            if fact.probe_only:
                continue
            gauge = self.fact_gauges[fact.name]
            self._track(target, gauge, (target, *labels)).set(value)
            now.add((gauge, (target, *labels)))
        if obs.peer is not None and obs.peer.identified:
            seen = self._transports.setdefault(target, set())
            counts = self.fact_gauges["peer_listen_addresses"]
            for transport in seen - {labels[1] for metric, labels in now if metric is counts}:
                self._track(target, counts, (target, transport)).set(0)
                now.add((counts, (target, transport)))
            seen.update(labels[1] for metric, labels in now if metric is counts)
        for metric, labels in self._last.get(target, set()) - now:
            self._remove(target, metric, labels)
        self._last[target] = now

        if obs.upgrade is not None:
            cause = obs.upgrade.causes[0] if obs.upgrade.causes else "none"
            self._track(target, self.upgrade_outcomes, (target, label(obs.upgrade.outcome, 64), label(cause, 64))).inc()
        if obs.gossip is not None:
            self._track(target, self.canaries_sent, (target,)).inc(obs.gossip.sent)
            self._track(target, self.canaries_delivered, (target,)).inc(obs.gossip.delivered)
            hist = self._track(target, self.canary_latency, (target,))
            for c in obs.gossip.canaries:
                if c.delivered and c.latency_s is not None:
                    hist.observe(c.latency_s)

    def reservation(self, state: ReservationState) -> None:
        """The reservation held on a relay changed: made, refreshed or lost."""
        self.changes += 1
        target = label(state.target)
        self._track(target, self.reservation_up, (target,)).set(float(state.up))
        if state.up and state.expiry_unix_s is not None:
            self._track(target, self.reservation_expiry, (target,)).set(state.expiry_unix_s)
        else:
            self._remove(target, self.reservation_expiry, (target,))
        last = self._refreshes.get(target, 0)
        # `refreshes` counts from the reservation's first making: a smaller number is a new reservation
        made = state.refreshes - last if state.refreshes >= last else state.refreshes
        self._track(target, self.reservation_refreshes, (target,)).inc(made)
        self._refreshes[target] = state.refreshes
        if self._up.get(target) and not state.up:
            self._track(target, self.reservation_losses, (target,)).inc()
        else:
            self._track(target, self.reservation_losses, (target,))  # present at 0 from the first state on
        self._up[target] = state.up
        announced = self._last.setdefault(target, set())
        for name, value in (("relay_limit_duration_seconds", state.limit_duration_s),
                            ("relay_limit_data_bytes", state.limit_data_bytes)):
            if value is not None:
                gauge = self.fact_gauges[name]
                self._track(target, gauge, (target,)).set(float(value))
                announced.add((gauge, (target,)))

    def event(self, kind: str, target: str) -> None:
        """The tracker named a change of KIND on TARGET."""
        self.changes += 1
        t = label(target)
        self._track(t, self.events, (label(kind, 64), t)).inc()
