"""A listening js-libp2p node's debug log judged: did it hold its reservation, who reached it through
the relay, did they upgrade? The log of the node a `p2pdiag listen` would stand in for.

A reservation's life is read from js-libp2p's reservation store: made (with its expiry), refreshed,
removed (its connection to the relay closed, or a refresh failed), made again or not. Removed and not
made again by the end of the log is `reservation-lost`: from then on nobody can dial the node through
that relay, while its process runs on (js-libp2p #3601: a relay given as a listen address is not
reserved again after it restarts). An expiry that passed with no refresh is `reservation-expired`.
"""

from __future__ import annotations

from datetime import datetime

from p2pdiag.diagnosis.facts import ListenerLogFacts, ReservationLife
from p2pdiag.diagnosis.findings import relay as RL
from p2pdiag.diagnosis.findings import webrtc as W
from p2pdiag.diagnosis.jslog import at_line, cited, read_step
from p2pdiag.diagnosis.model import Confidence, Outcome, StepStatus, Verdict
from p2pdiag.diagnosis.steps import Builder, by_severity, in_time_order, short_peer_id
from p2pdiag.evidence.events import (
    AddressDialed,
    RelayedConnectionOpened,
    ReservationCreated,
    ReservationRefreshFailed,
    ReservationRefreshing,
    ReservationRemoved,
    WebRTCStep,
    WebRTCUpgraded,
)
from p2pdiag.evidence.jslog import JsLog

COMMAND = "analyze"
ABANDONED_SETTLE = "the dialer's log for the same moments (`p2pdiag analyze` both logs together): why it gave up"
LOST_SETTLE = ("the node's log over a longer time after the relay came back, or now: `p2pdiag dial "
               "<relay>/p2p-circuit/p2p/<this peer>`; HOP STATUS NO_RESERVATION confirms the node is not there")


def _seconds_after_start(log: JsLog, iso: str | None) -> float | None:
    if iso is None or log.first_time is None:
        return None
    try:
        return (datetime.fromisoformat(iso) - datetime.fromisoformat(log.first_time)).total_seconds()
    except ValueError:
        return None


def _life(b: Builder, log: JsLog, relay: str) -> ReservationLife:
    """One relay's reservation, made to removed (and again), as steps and findings."""
    kinds = ReservationCreated | ReservationRefreshing | ReservationRefreshFailed | ReservationRemoved
    mine = [f for f in log.facts if isinstance(f, kinds) and f.relay_peer_id == relay]
    made = [f for f in mine if isinstance(f, ReservationCreated)]
    removed = [f for f in mine if isinstance(f, ReservationRemoved)]
    refreshes = [f for f in mine if isinstance(f, ReservationRefreshing)]
    short = short_peer_id(relay)
    for f in mine:
        if isinstance(f, ReservationCreated):
            again = " again" if f is not made[0] else ""
            expiry = f"; expires {f.expiry}" if f.expiry else ""
            b.step("reservation", f"Reservation on relay {short}{again}", StepStatus.OK,
                   f"made at {at_line(log, f)}{expiry}", f)
        elif isinstance(f, ReservationRefreshFailed):
            b.step("reservation", f"Refresh the reservation on relay {short}", StepStatus.FAILED,
                   f"{f.error} ({at_line(log, f)})", f)
        elif isinstance(f, ReservationRemoved):
            b.step("reservation", f"Reservation on relay {short} removed", StepStatus.FAILED,
                   f"js-libp2p removed it from its store at {at_line(log, f)}: its connection to the relay closed, "
                   "or a refresh failed", f)
    held = bool(made) and (not removed or made[-1].line > removed[-1].line)
    lost_at = removed[-1] if removed and not held else None
    if lost_at is not None:
        left = (log.span_s - lost_at.t_s) if log.span_s is not None and lost_at.t_s is not None else None
        redialed = [d for d in log.facts
                    if isinstance(d, AddressDialed) and d.line > lost_at.line and relay in d.address]
        evidence = [f"{at_line(log, lost_at)}: removing relay reservation with {relay} from local store"]
        evidence.append("no reservation made again before the log ends" + (f", {left:.1f} s later" if left else ""))
        evidence.append(f"the node dialed the relay again {len(redialed)} time(s) after that" if redialed
                        else "the node did not dial the relay again")
        confidence = Confidence.LIKELY if left is not None and left >= 10 else Confidence.POSSIBLE
        b.find(RL.reservation_lost(relay, left, tuple(evidence), confidence, LOST_SETTLE))
    expiry_s = _seconds_after_start(log, made[-1].expiry) if made else None
    if held and expiry_s is not None and log.span_s is not None and expiry_s < log.span_s:
        refreshed = [f for f in refreshes if f.line > made[-1].line]
        if not refreshed:
            b.find(RL.reservation_expired(relay, (
                f"{at_line(log, made[-1])}: created, expiry {made[-1].expiry} (t={expiry_s:.3f} s)",
                f"the log goes on to t={log.span_s:.3f} s with no refresh")))
    return ReservationLife(relay, len(made), len(refreshes), len(removed), held,
                           lost_at.t_s if lost_at is not None else None, made[-1].expiry if made else None)


def _dialer_gave_up(log: JsLog, upgraded: WebRTCUpgraded) -> WebRTCStep | None:
    """The signaling stream reset by the dialer during this answer, before js-libp2p reported the connection
    upgraded: a js-libp2p listener reports one even then, and it never carries a stream."""
    opened = [f for f in log.facts if isinstance(f, RelayedConnectionOpened) and f.line < upgraded.line]
    since = opened[-1].line if opened else 0
    return next((f for f in log.facts if isinstance(f, WebRTCStep) and f.step == "recipient-error"
                 and since < f.line < upgraded.line and "reset" in f.detail.lower()), None)


def diagnose_listener_log(log: JsLog) -> Verdict:
    b = Builder()
    read = read_step(b, log)
    relays: list[str] = []
    for f in log.facts:
        relay = getattr(f, "relay_peer_id", None)
        if isinstance(f, ReservationCreated | ReservationRemoved) and relay not in relays:
            relays.append(relay)
    lives = tuple(_life(b, log, relay) for relay in relays)

    inbound = [f for f in log.facts if isinstance(f, RelayedConnectionOpened) and not f.outbound]
    for f in inbound:
        b.step(f"{f.connection}.inbound", f"Inbound relayed connection from {short_peer_id(f.peer_id)}", StepStatus.OK,
               f"at {at_line(log, f)}; limits {{ duration: {f.duration_limit}, data: {f.data_limit_bytes} }}", f)
    upgraded = []
    for f in (f for f in log.facts if isinstance(f, WebRTCUpgraded)):
        reset = _dialer_gave_up(log, f)
        if reset is None:
            upgraded.append(f)
            b.step(f"{f.connection}.upgraded", "WebRTC upgrade answered", StepStatus.OK,
                   f"direct connection {f.connection} at {at_line(log, f)}", f)
            continue
        what = f"{at_line(log, reset)}: {reset.detail}, then {at_line(log, f)}: 'successfully upgraded connection'"
        b.step(f"{f.connection}.upgraded", "WebRTC upgrade answered", StepStatus.FAILED,
               f"the dialer reset signaling before ICE connected ({at_line(log, reset)}); the connection js-libp2p "
               f"then reported upgraded ({f.connection}) is not counted", f)
        b.find(cited(W.upgrade_abandoned(what), (what,), settle=ABANDONED_SETTLE))
    if lives and not inbound:
        b.step("inbound", "Inbound relayed connections", StepStatus.INFO, "none in the log")

    holding = [life for life in lives if life.held]
    n = len(inbound)
    outcome = Outcome.LISTENED if holding or (inbound and not lives) else Outcome.UNREACHABLE
    if not lives and inbound:
        headline = (f"{n} inbound relayed connection{'s' if n != 1 else ''}, {len(upgraded)} upgraded to WebRTC; "
                    "the log starts after the node reserved (its reservation is not in it).")
    elif holding:
        headline = (f"Listened through the relay to the end of the log; {n} inbound relayed connection"
                    f"{'s' if n != 1 else ''}, {len(upgraded)} upgraded to WebRTC.")
    elif any(life.made for life in lives):
        headline = ("The node lost its reservation and did not reserve again: from then on nobody could dial it "
                    "through the relay, though its process ran on.")
    else:
        headline = "The node made no reservation: nobody could dial it through a relay."
    details = ListenerLogFacts(read, lives, n, tuple(sorted({f.peer_id for f in inbound})),
                               tuple(f.connection for f in upgraded))
    return Verdict(COMMAND, outcome, headline, tuple(in_time_order(b.steps)), tuple(by_severity(b.findings)), details)
