"""Events recorded by `p2pdiag relay-check`.

relay-check reuses the relay and circuit events (relay.connected, identify.completed,
reservation.accepted, hop.status_received, circuit.*, ping.*). Several ephemeral identities talk
to the same relay, and those events do not say which identity acted, so each relay's check runs
its phases one after another and marks the start of each with `relaycheck.phase_started`: an
event about relay R belongs to the identity of the last phase started on R. Events that carry a
`connection_id` use ids that start with the relay's label ("r2.loop").
"""

from __future__ import annotations

import enum

from p2pdiag.trace.events.base import ConnectionEvent, ErrorKind, Event, event_class, register


class CheckPhase(enum.Enum):
    """The phases of one relay's check, in the order they run."""

    CONNECT = "connect"  # the first identity connects to the relay and identifies it
    RESERVE = "reserve"  # ...and reserves a slot
    REFRESH = "refresh"  # ...and reserves again at once: a refresh before expiry
    LOOP = "loop"  # a second identity dials the first through the relay (HOP CONNECT -> STOP CONNECT)
    THROUGHPUT = "throughput"  # ...and pushes a payload over that circuit, well inside the data limit
    MEASURE_DATA = "measure-data"  # --measure-limits: echo data over a circuit until the relay cuts it
    MEASURE_DURATION = "measure-duration"  # --measure-limits: hold a circuit until the relay cuts it
    DROP = "drop"  # the first identity closes its relay connection; the second asks for it again
    SLOT = "slot"  # --reservations N: identity number `index` connects and reserves
    SLOT_AFTER_FREE = "slot-after-free"  # a refused identity tries again after p2pdiag freed a slot


class LimitKind(enum.Enum):
    DATA = "data"
    DURATION = "duration"


# --- relay-check (`p2pdiag relay-check`) -----------------------------------------------------

@register("relaycheck.relay_listed")
@event_class
class RelayListed(Event):
    """A relay to check. `source` is "argument" or the --from-file path, `line` its line there."""

    relay: str
    relay_peer_id: str
    transport: str
    label: str  # "r1", "r2"...: prefixes this relay's connection ids and step keys
    source: str
    line: int | None


@register("relaycheck.entry_rejected")
@event_class
class EntryRejected(Event):
    """A --from-file line that is not a relay address p2pdiag can check (or repeats one)."""

    source: str
    line: int
    text: str
    error: str
    duplicate_of: str | None = None  # the label of the relay this line repeats


@register("relaycheck.phase_started")
@event_class
class PhaseStarted(Event):
    relay: str
    phase: CheckPhase
    peer_id: str  # the identity acting in this phase
    wall_unix_s: float  # wall clock now: reservation expiry and voucher expiration are wall-clock times
    index: int = 0  # the identity's number in SLOT phases


@register("relaycheck.phase_skipped")
@event_class
class PhaseSkipped(Event):
    relay: str
    phase: CheckPhase
    reason: str


@register("relaycheck.relay_connection_closed")
@event_class
class RelayConnectionClosed(Event):
    """p2pdiag closed this identity's connection to the relay (its reservation should go with it)."""

    relay: str
    peer_id: str


@register("relaycheck.transfer_completed")
@event_class
class TransferCompleted(ConnectionEvent):
    """A payload pushed over a relayed connection and acknowledged by the far end."""

    relay: str
    payload_bytes: int
    duration_s: float


@register("relaycheck.transfer_failed")
@event_class
class TransferFailed(ConnectionEvent):
    relay: str
    payload_bytes: int  # what was to be sent
    error_kind: ErrorKind
    error: str
    duration_s: float
    counted_bytes: int | None = None  # what the far end says it received; None: no count came
    digest_matched: bool | None = None  # the far end's SHA-256 of what it received is the payload's; None: no answer


@register("relaycheck.limit_probe_started")
@event_class
class LimitProbeStarted(ConnectionEvent):
    relay: str
    limit: LimitKind
    announced: int | None  # Limit.duration or Limit.data as the relay wrote it
    give_up_bytes: int | None  # never echo more than this (data)
    give_up_s: float | None  # never hold longer than this (duration)


@register("relaycheck.limit_probe_ended")
@event_class
class LimitProbeEnded(ConnectionEvent):
    """The end of a limit measurement: the relay cut the circuit, or p2pdiag gave up waiting."""

    relay: str
    limit: LimitKind
    cut: bool
    bytes_sent: int  # on the circuit stream, all protocol overhead included
    bytes_received: int
    age_s: float  # since the circuit opened
    reason: str


@register("relaycheck.relay_finished")
@event_class
class RelayCheckFinished(Event):
    relay: str
    duration_s: float
    out_of_time: bool  # the relay's share of --timeout ran out before every phase ran


@register("relaycheck.probe_crashed")
@event_class
class ProbeCrashed(Event):
    """A bug in p2pdiag while checking this relay; the other relays' checks go on."""

    relay: str
    error_type: str
    error: str
