"""Diagnosis of a `listen` trace: reservations held, and every inbound relayed connection."""

from __future__ import annotations

import dataclasses

from p2pdiag.diagnosis.facts import ListenFacts
from p2pdiag.diagnosis.findings import circuit as C
from p2pdiag.diagnosis.findings import relay as RL
from p2pdiag.diagnosis.findings import run as R
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
    Event,
    PingServed,
    RelayDialStarted,
    ReservationAccepted,
    ReservationFailed,
    StepTimedOut,
    StopConnectReceived,
    WebRTCUpgradeStarted,
)
from p2pdiag.trace.file import Trace


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


def diagnose_listen(trace: Trace) -> Verdict:
    events = trace.events
    b = Builder()
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

    stops = all_of(events, StopConnectReceived)
    stories = {stop.connection_id: inbound_story(b, events, stop, agents, relay_addrs) for stop in stops}
    if accepted_any and not stops:
        b.step("inbound", "Inbound relayed connections", StepStatus.INFO, "none while listening")
    loops = reconnect_loops(events, agents, {cid: s for cid, s in stories.items() if s is not None})
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
