"""Events recorded by `p2pdiag watch`: its targets, each probe's result in brief, the reservation it
holds on each relay, and every state change the tracker (p2pdiag/watch/tracker.py) named.

A watch runs for hours, so a probe is one line, not the dozens of step events a `dial` records:
what `analyze` needs for a history (when each target was probed, whether it passed, where it
failed and why), and the facts a change is judged on (a peer's announced addresses, a relay's
limits, canaries). The changes themselves are recorded as `watch.changed`, with their evidence.
"""

from __future__ import annotations

from p2pdiag.trace.events.base import Event, event_class, register


@register("watch.started")
@event_class
class WatchStarted(Event):
    """`started_unix_s` is the wall clock when the run began (t_s 0): each probe's time is on it too."""

    started_unix_s: float
    targets: int
    shard: str | None = None  # "K/N" when this instance watches one shard of the config
    metrics: str | None = None  # where /metrics and /probe are served (HOST:PORT)


@register("watch.target_listed")
@event_class
class TargetListed(Event):
    module: str  # relay, peer, upgrade, gossipsub
    target: str
    interval_s: float
    timeout_s: float
    what: str  # the relay's address, the peer's id, the topic


@register("watch.probed")
@event_class
class Probed(Event):
    """One probe of one target. Module facts are filled for the module that has them."""

    module: str
    target: str
    ok: bool
    duration_s: float
    phases: tuple[str, ...] = ()  # phase names, in order…
    phase_durations_s: tuple[float, ...] = ()  # …and how long each took
    failed_phase: str | None = None
    error_kind: str | None = None
    error: str | None = None
    timed_out: bool = False
    starved_s: float | None = None  # p2pdiag was held this long while the probe timed out: counts for no target
    agent: str | None = None  # relay, peer
    listen_addrs: tuple[str, ...] = ()  # relay, peer: as identify announced them
    paths: tuple[str, ...] = ()  # peer: each address dialed ("ADDR" or "ADDR via RELAY")…
    paths_ok: tuple[bool, ...] = ()  # …and whether it completed identify
    reservation_status: str | None = None  # relay: what RESERVE got
    limit_duration_s: float | None = None  # relay: announced, seconds
    limit_data_bytes: int | None = None
    outcome: str | None = None  # upgrade: the dial verdict's outcome…
    causes: tuple[str, ...] = ()  # …and finding codes, the headline first
    canaries_sent: int | None = None  # gossipsub
    canaries_delivered: int | None = None
    canary_latency_max_s: float | None = None


@register("watch.reservation")
@event_class
class ReservationChanged(Event):
    """The reservation watch holds on a relay: made, refreshed, lost or made again."""

    target: str
    up: bool
    expiry_unix_s: float | None = None
    refreshes: int = 0
    error_kind: str | None = None
    error: str | None = None


@register("watch.changed")
@event_class
class Changed(Event):
    """A state change the tracker named (its kinds: docs/watch.md)."""

    change: str  # a ChangeKind value: peer-not-listening, reservation-lost …
    module: str
    target: str
    detail: str
    bad: bool  # a fault appeared (False: one went away)
    subject: str | None = None  # the address, path or peer id it is about
