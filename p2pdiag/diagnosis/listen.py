"""Diagnosis of a `listen` trace: reservations held, and every inbound relayed connection."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable

from p2pdiag.diagnosis.facts import ListenFacts
from p2pdiag.diagnosis.findings import circuit as C
from p2pdiag.diagnosis.findings import relay as RL
from p2pdiag.diagnosis.findings import run as R
from p2pdiag.diagnosis.indexed import Events
from p2pdiag.diagnosis.limits import read_duration
from p2pdiag.diagnosis.model import Outcome, Step, StepStatus, Verdict
from p2pdiag.diagnosis.query import all_of, first
from p2pdiag.diagnosis.reconnect import reconnect_loop_finding, reconnect_loops
from p2pdiag.diagnosis.relayed import circuit_story, cut_as_cause, cut_title, limit_cut, relay_path, upgrade_part
from p2pdiag.diagnosis.steps import Builder, in_time_order, limit_text
from p2pdiag.diagnosis.upgrade import UpgradeStory
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitUpgradeFailed,
    ConnectionEvent,
    Event,
    HopConnectSent,
    HopFailed,
    IdentifyCompleted,
    IdentifyFailed,
    PingServed,
    RelayConnected,
    RelayDialFailed,
    RelayDialStarted,
    ReservationAccepted,
    ReservationFailed,
    RunFinished,
    RunInterrupted,
    StepTimedOut,
    StopConnectReceived,
    Subject,
    WebRTCUpgradeStarted,
)
from p2pdiag.trace.file import Trace

EventsOf = Callable[[str], tuple[Event, ...]]

# Context that no attempt's story reads (relayed.relay_path and relays_part do, over the context):
# left out of each attempt's events, so that a reservation refreshed all day long costs no attempt.
UNREAD_BY_ATTEMPTS = (RelayDialStarted, RelayConnected, RelayDialFailed, ReservationAccepted, ReservationFailed,
                      HopConnectSent, HopFailed, StepTimedOut, RunInterrupted, RunFinished)


class Attempts:
    """A listen trace's events sorted by inbound attempt, so that telling one attempt reads its own
    events and the run's context instead of the whole trace (which made a long listen quadratic).

    An attempt is one inbound relayed connection (its STOP's connection id) with the WebRTC
    connections upgraded over it. A connection's event goes to the attempt whose story can read it:
    its connection id is the attempt's or one of its WebRTC connections', or its
    `relayed_connection_id` is the attempt's. Every other event is context. An attempt's events are
    its own and the context, but for `UNREAD_BY_ATTEMPTS` (which only the relays' part reads): a
    relay's identify (network.py reads the first of any relay's), an event two attempts could read.
    An event no attempt can read (pings served on the relay's own connection, an upgrade over an
    unknown connection) is set aside. So `events_of(cid)` gives every query that inbound_story,
    upgrade_story and reconnect.round_of make for `cid` what the whole trace would give: the same
    events, in order.

    `of_trace` claims every attempt before it sorts, so it holds for any trace. Fed event by event
    (`add`, the live view), an attempt is known from its STOP on, and a WebRTC connection from its
    upgrade's start, as the listener records them; `irregular` says when a trace broke that (an
    event of an attempt before its STOP, an id two attempts share, a STOP's id twice): the live view
    then reads the whole trace (`everything`), as before.
    """

    def __init__(self) -> None:
        self._n = 0
        self.context: list[tuple[int, Event]] = []
        self._shared: list[tuple[int, Event]] = []  # the context an attempt's story may read
        self._set_aside: dict[str, list[tuple[int, Event]]] = {}  # by connection id and relayed connection id
        self._owner: dict[str, str | None] = {}  # connection id -> its attempt; None: two attempts
        # attempt -> its events in order, and their places in the trace (8 bytes each: a long listen keeps them)
        self._events: dict[str, list[Event]] = {}
        self._places: dict[str, array[int]] = {}
        self.irregular = False

    @classmethod
    def of_trace(cls, events: tuple[Event, ...]) -> Attempts:
        attempts = cls()
        for e in events:
            if isinstance(e, StopConnectReceived):
                attempts._claim_stop(e)
        for e in events:
            attempts._claim_upgrade(e)
        for e in events:
            attempts._sort(e)
        return attempts

    def add(self, e: Event) -> str | None:
        """Claim and sort one more event; the attempt it went to, if any."""
        if isinstance(e, StopConnectReceived):
            self._claim_stop(e)
        self._claim_upgrade(e)
        return self._sort(e)

    def _claim_stop(self, stop: StopConnectReceived) -> None:
        if stop.connection_id in self._events:
            self.irregular = True  # a second STOP with the same id
        self._events.setdefault(stop.connection_id, [])
        self._places.setdefault(stop.connection_id, array("q"))
        self._claim(stop.connection_id, stop.connection_id)

    def _claim_upgrade(self, e: Event) -> None:
        relayed = getattr(e, "relayed_connection_id", None)
        if isinstance(e, ConnectionEvent) and relayed in self._events:
            self._claim(e.connection_id, relayed)

    def _claim(self, connection_id: str, attempt: str) -> None:
        if connection_id not in self._owner:
            self._owner[connection_id] = attempt
            if connection_id in self._set_aside:
                self.irregular = True  # events of it came before it was known
        elif self._owner[connection_id] != attempt:
            self._owner[connection_id] = None
            self.irregular = True

    def _sort(self, e: Event) -> str | None:
        n = self._n
        self._n += 1
        if not isinstance(e, ConnectionEvent) or (isinstance(e, (IdentifyCompleted, IdentifyFailed))
                                                  and e.subject is Subject.RELAY):
            self._to_context(n, e)
            return None
        readers: set[str] = set()
        if e.connection_id in self._owner:
            owner = self._owner[e.connection_id]
            if owner is None:
                self._to_context(n, e)
                return None
            readers.add(owner)
        relayed = getattr(e, "relayed_connection_id", None)
        if relayed in self._events:
            readers.add(relayed)
        if len(readers) != 1:
            if readers:
                self._to_context(n, e)
            else:
                self._set_aside.setdefault(e.connection_id, []).append((n, e))
                if isinstance(relayed, str) and relayed != e.connection_id:
                    self._set_aside.setdefault(relayed, []).append((n, e))
            return None
        (attempt,) = readers
        self._events[attempt].append(e)
        self._places[attempt].append(n)
        return attempt

    def _to_context(self, n: int, e: Event) -> None:
        self.context.append((n, e))
        if not isinstance(e, UNREAD_BY_ATTEMPTS):
            self._shared.append((n, e))

    def events_of(self, attempt: str) -> tuple[Event, ...]:
        """The context an attempt may read and the attempt's own events, in the trace's order."""
        own = zip(self._places.get(attempt, ()), self._events.get(attempt, ()), strict=True)
        return tuple(e for _, e in sorted([*self._shared, *own]))

    def everything(self) -> tuple[Event, ...]:
        """Every event added, in order (each once)."""
        own = (zip(self._places[a], self._events[a], strict=True) for a in self._events)
        seen = {n: e for part in (self.context, *own, *self._set_aside.values()) for n, e in part}
        return tuple(seen[n] for n in sorted(seen))


def inbound_story(b: Builder, events: tuple[Event, ...], stop: StopConnectReceived,
                  agents: dict[str, str | None], relay_addrs: dict[str, str]) -> UpgradeStory | None:
    """One inbound relayed connection's steps and findings; the story of its upgrade, once secured."""
    cid = stop.connection_id
    secured = first(events, CircuitSecured, connection_id=cid)
    reading = read_duration(stop.announced_duration_s, agents.get(stop.relay_peer_id))
    b.step(f"{cid}.stop", f"Inbound relayed connection {cid} from {stop.source_peer_id}", StepStatus.INFO,
           f"via relay {stop.relay_peer_id}; limit: {limit_text(reading, stop.announced_data_bytes)}", stop)
    if reading.suspect_unit:
        # named as the reservation named it, so the same relay's finding is not listed twice
        b.find(C.limit_unit_suspect(relay_addrs.get(stop.relay_peer_id, stop.relay_peer_id), reading))
    if secured is None:
        failed = first(events, CircuitUpgradeFailed, connection_id=cid)
        if failed is not None:
            # a relay with a small data limit cuts under the handshake: the cut is the cause
            cut = limit_cut(events, cid, failed.t_s - failed.duration_s, reading, stop.announced_data_bytes or None)
            b.step(f"{cid}.secure", "Secure session with the dialer", StepStatus.FAILED,
                   f"{failed.error_kind.value}: {failed.error}" + (f"; {cut_title(cut)}" if cut else ""),
                   failed, failed.duration_s)
            b.find(C.circuit_handshake_failed(failed.relay, failed.error_kind, failed.error))
            if cut is not None:
                closed = first(events, CircuitClosed, connection_id=cid)
                reason = closed.reason if closed else ""
                b.find(dataclasses.replace(C.relay_cut(cut.cause, cut.detail, failed.relay, reason),
                                           data=cut.as_fact()))
                cut_as_cause(b, events, cut, set())
        return None
    b.step(f"{cid}.secure", "Secure session with the dialer", StepStatus.OK,
           f"{secured.security or '?'}, {secured.muxer or '?'}", secured, secured.duration_s)
    story = upgrade_part(b, events, cid)
    served = all_of(events, PingServed, connection_id=cid)
    if served:
        b.step(f"{cid}.served", "Pings answered for the dialer", StepStatus.OK, f"{served[-1].count}", served[-1])
    circuit_story(b, events, secured, reading, stop.announced_data_bytes or None, subject="dialer")
    return story


def relays_part(b: Builder, events: tuple[Event, ...]) -> tuple[dict[str, str | None], dict[str, str], bool]:
    """The relays' steps and findings (connect, identify, reservations); each relay's agent and address
    by its peer id, and whether any reservation was accepted."""
    agents: dict[str, str | None] = {}
    relay_addrs: dict[str, str] = {}
    accepted_any = False
    for started in all_of(events, RelayDialStarted):
        connected, agent = relay_path(b, events, started, unanswered_is_finding=True)
        agents[started.relay_peer_id] = agent
        relay_addrs[started.relay_peer_id] = started.relay
        if not connected:
            continue
        accepted = all_of(events, ReservationAccepted, relay=started.relay)
        failed = all_of(events, ReservationFailed, relay=started.relay)
        if accepted:
            accepted_any = True
            first_ok = accepted[0]
            reading = read_duration(first_ok.announced_duration_s, agent)
            refreshed = [a for a in accepted if a.refresh]
            b.step("reservation", f"Reservation on {started.relay}", StepStatus.OK,
                   f"expires at unix {first_ok.expire_unix_s}; {len(first_ok.addrs)} addrs; voucher "
                   f"{first_ok.voucher_bytes} B; limit: {limit_text(reading, first_ok.announced_data_bytes)}"
                   + (f"; refreshed {len(refreshed)}×" if refreshed else ""),
                   first_ok, first_ok.duration_s)
            if reading.suspect_unit:
                b.find(C.limit_unit_suspect(started.relay, reading))
        for f in failed:
            b.step("reservation", f"Reservation on {started.relay}" + (" (refresh)" if f.refresh else ""),
                   StepStatus.FAILED, f"{f.status_name}: {f.error}", f, f.duration_s)
            b.find(RL.reservation_refused(f))
    return agents, relay_addrs, accepted_any


def diagnose_listen(trace: Trace, indexed: bool = True) -> Verdict:
    """The listen verdict. `indexed` False tells every attempt from the whole trace, as before
    `Attempts` (quadratic over a long listen): for the tests and the bench that compare the two."""
    events = trace.events
    # a streamed trace (analyze) is indexed already and keeps only some of its bulk events, counting the
    # rest: an attempt's own selection of them would count only those kept, so it is read whole
    indexed = indexed and not isinstance(events, Events)
    events_of: EventsOf = Attempts.of_trace(events).events_of if indexed else (lambda cid: events)
    b = Builder()
    agents, relay_addrs, accepted_any = relays_part(b, events)

    stops = all_of(events, StopConnectReceived)
    stories = {stop.connection_id: inbound_story(b, events_of(stop.connection_id), stop, agents, relay_addrs)
               for stop in stops}
    if accepted_any and not stops:
        b.step("inbound", "Inbound relayed connections", StepStatus.INFO, "none while listening")
    loops = reconnect_loops(events, agents, {cid: s for cid, s in stories.items() if s is not None}, events_of)
    for loop in loops:
        b.find(reconnect_loop_finding(loop))

    for timeout in all_of(events, StepTimedOut):
        b.find(R.step_timed_out(timeout.step, timeout.timeout_s))
    outcome = Outcome.LISTENED if accepted_any else Outcome.UNREACHABLE
    n = len(stops)
    headline = (f"Listened through the relay; {n} inbound relayed connection{'s' if n != 1 else ''}."
                if accepted_any else "No relay gave a reservation: nobody could dial this peer.")
    if loops:
        headline += " " + " ".join(f"{loop.peer_id} kept coming back: {len(loop.rounds)} rounds, one every "
                                   f"{loop.period_s:.1f} s." for loop in loops)
    facts = ListenFacts(n, tuple(sorted({s.source_peer_id for s in stops})),
                        {u.relayed_connection_id: u.connection_id for u in all_of(events, WebRTCUpgradeStarted)},
                        tuple(loops))
    return Verdict("listen", outcome, headline, tuple(in_time_order(b.steps)), tuple(b.findings), facts)


def attempt_steps(verdict: Verdict, connection_id: str) -> list[Step]:
    """One inbound relayed connection's steps with those of the WebRTC upgrade it carried."""
    webrtc = verdict.details.upgrades.get(connection_id) if isinstance(verdict.details, ListenFacts) else None
    prefixes = (f"{connection_id}.",) + ((f"{webrtc}.",) if webrtc else ())
    return [s for s in verdict.steps if s.key.startswith(prefixes)]
