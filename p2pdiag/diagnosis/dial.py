"""Diagnosis of a `dial` (or `demo`) trace: the relay path step by step, then why."""

from __future__ import annotations


from p2pdiag.diagnosis import findings as F
from p2pdiag.diagnosis.limits import DurationReading, attribute_cut, fmt_bytes, fmt_seconds, read_duration
from p2pdiag.diagnosis.model import Outcome, Severity, StepStatus, Verdict
from p2pdiag.diagnosis.query import all_of, first, last
from p2pdiag.diagnosis.steps import Builder, by_severity, in_time_order, limit_text
from p2pdiag.diagnosis.upgrade import upgrade_story
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitTraffic,
    CircuitUpgradeFailed,
    Closer,
    DialMethod,
    Event,
    HoldStarted,
    HopConnectSent,
    HopFailed,
    HopStatusReceived,
    IdentifyCompleted,
    IdentifyFailed,
    Path,
    PingCompleted,
    PingFailed,
    RelayConnected,
    RelayDialFailed,
    RelayDialStarted,
    RunInterrupted,
    StepTimedOut,
    Subject,
    TargetResolved,
    UpgradeNotAttempted,
    WebRTCUpgradeFailed,
    WebRTCUpgradeSucceeded,
)

# A relayed connection the peer closes this soon after an upgrade attempt ended was closed
# because of the attempt (js-libp2p #3015), not for a reason of its own.
CLOSED_AFTER_UPGRADE_S = 10.0
from p2pdiag.trace.file import Trace


def _short(peer_id: str) -> str:
    return peer_id if len(peer_id) <= 16 else f"{peer_id[:8]}…{peer_id[-6:]}"


def relay_path(b: Builder, events: tuple[Event, ...], started: RelayDialStarted) -> tuple[bool, str | None]:
    """Steps for one relay's connect + identify; returns (connected, relay agent)."""
    relay = started.relay
    connected = first(events, RelayConnected, relay=relay)
    failed = first(events, RelayDialFailed, relay=relay)
    if connected is None:
        if failed is not None:
            b.step("relay.connect", f"Connect to relay {relay}", StepStatus.FAILED,
                   f"{failed.error_kind.value}: {failed.error}", failed, failed.duration_s)
            b.find(F.relay_unreachable(failed))
        else:
            b.step("relay.connect", f"Connect to relay {relay}", StepStatus.FAILED, "no answer before the run ended", started)
        return False, None
    b.step("relay.connect", f"Connect to relay {relay}", StepStatus.OK,
           f"{started.transport}, {connected.security or '?'}, {connected.muxer or '?'}",
           connected, connected.duration_s)
    ident = first(events, IdentifyCompleted, subject=Subject.RELAY, peer_id=started.relay_peer_id)
    ident_failed = first(events, IdentifyFailed, subject=Subject.RELAY, peer_id=started.relay_peer_id)
    agent = None
    if ident is not None:
        agent = ident.agent_version
        hop = F.HOP_PROTOCOL in ident.protocols
        observed = f", sees us as {ident.observed_addr}" if ident.observed_addr else ""
        b.step("relay.identify", "Identify the relay", StepStatus.OK if hop else StepStatus.FAILED,
               f"{agent or 'no agent'}; HOP {'offered' if hop else 'NOT offered'}{observed}",
               ident, ident.duration_s)
        if not hop:
            b.find(F.relay_no_hop(relay, agent, f"identify lists {len(ident.protocols)} protocols, not {F.HOP_PROTOCOL}"))
    elif ident_failed is not None:
        b.step("relay.identify", "Identify the relay", StepStatus.WARNING,
               f"{ident_failed.error_kind.value}: {ident_failed.error}", ident_failed, ident_failed.duration_s)
        b.find(F.identify_failed("relay", started.relay_peer_id, ident_failed.error_kind, ident_failed.error))
    return True, agent


def hop_step(b: Builder, events: tuple[Event, ...], relay: str, agent: str | None) -> HopStatusReceived | None:
    sent = first(events, HopConnectSent, relay=relay)
    status = first(events, HopStatusReceived, relay=relay)
    failed = first(events, HopFailed, relay=relay)
    if status is not None:
        ok = status.status_name == "OK"
        limit = limit_text(read_duration(status.announced_duration_s, agent), status.announced_data_bytes)
        b.step("hop.connect", "Ask the relay to connect us (HOP CONNECT)",
               StepStatus.OK if ok else StepStatus.FAILED, f"STATUS {status.status_name}; limit: {limit}",
               status, status.duration_s)
        if not ok:
            b.find(F.hop_refused(status))
        return status
    if failed is not None:
        b.step("hop.connect", "Ask the relay to connect us (HOP CONNECT)", StepStatus.FAILED,
               f"{failed.error_kind.value} while {failed.stage}: {failed.error}", failed, failed.duration_s)
        b.find(F.hop_unanswered(relay, failed.stage, failed.error_kind, failed.error, agent))
    elif sent is not None:
        b.step("hop.connect", "Ask the relay to connect us (HOP CONNECT)", StepStatus.FAILED,
               "no answer before the run ended", sent)
    return None


def circuit_story(
    b: Builder,
    events: tuple[Event, ...],
    secured: CircuitSecured,
    reading: DurationReading,
    data_limit: int | None,
    subject: str = "peer",
) -> CircuitClosed | None:
    """Steps from the secured relayed connection to its end; shared by dial and listen.

    `subject` is "peer" when we dialed and "dialer" when we listened: a dialer closing its
    connection when it is done is normal, and whether it offers WebRTC signaling does not
    matter to the side that answers.
    """
    dialing = subject == "peer"
    cid = secured.connection_id
    ident = first(events, IdentifyCompleted, subject=Subject.PEER, connection_id=cid)
    ident_failed = first(events, IdentifyFailed, subject=Subject.PEER, connection_id=cid)
    if ident is not None:
        signaling = F.SIGNALING_PROTOCOL in ident.protocols
        b.step(f"{cid}.identify", f"Identify the {subject} over the relayed connection", StepStatus.OK,
               f"{ident.agent_version or 'no agent'}; WebRTC signaling {'offered' if signaling else 'not offered'}",
               ident, ident.duration_s)
        if not signaling and dialing:
            b.find(F.peer_no_signaling(secured.remote_peer_id, ident.agent_version, ident.protocols))
    elif ident_failed is not None:
        b.step(f"{cid}.identify", f"Identify the {subject} over the relayed connection", StepStatus.WARNING,
               f"{ident_failed.error_kind.value}: {ident_failed.error}", ident_failed, ident_failed.duration_s)
        b.find(F.identify_failed(subject, secured.remote_peer_id, ident_failed.error_kind, ident_failed.error))

    pings = all_of(events, PingCompleted, connection_id=cid, path=Path.RELAYED)
    ping_failures = all_of(events, PingFailed, connection_id=cid, path=Path.RELAYED)
    hold = first(events, HoldStarted, connection_id=cid)
    if pings and (not ping_failures or pings[0].t_s < ping_failures[0].t_s):
        b.step(f"{cid}.ping", "Ping over the relayed connection", StepStatus.OK,
               f"round trip {pings[0].rtt_s * 1000:.1f} ms (this connection, not another path)", pings[0])
    elif ping_failures:
        pf = ping_failures[0]
        b.step(f"{cid}.ping", "Ping over the relayed connection", StepStatus.FAILED,
               f"{pf.error_kind.value}: {pf.error}", pf)
        if hold is None or pf.t_s < hold.t_s:
            b.find(F.relayed_ping_failed(pf.error_kind, pf.error))

    if reading.effective_s or data_limit:
        traffic = last(events, CircuitTraffic, connection_id=cid)
        closed = first(events, CircuitClosed, connection_id=cid)
        age = closed.age_s if closed else (traffic.age_s if traffic else 0.0)
        used = (closed.bytes_sent + closed.bytes_received) if closed else (
            (traffic.bytes_sent + traffic.bytes_received) if traffic else 0)
        parts = []
        if reading.effective_s:
            left = max(0.0, reading.effective_s - age)
            parts.append(f"{left:.0f} s of {fmt_seconds(reading.effective_s)} left, predicted cut at "
                         f"t={secured.t_s - secured.duration_s + reading.effective_s:.1f} s")
        if data_limit:
            parts.append(f"{fmt_bytes(used)} of {fmt_bytes(data_limit)} used ({100 * used / data_limit:.0f}%)")
        seen = closed or traffic
        if seen is not None:
            parts.append(f"as of t={seen.t_s:.1f} s")
        b.step(f"{cid}.limits", "Relay limits on this connection", StepStatus.INFO, "; ".join(parts), seen)

    if hold is not None:
        during = [p for p in pings if p.t_s >= hold.t_s]
        fails = [p for p in ping_failures if p.t_s >= hold.t_s]
        b.step(f"{cid}.hold", f"Hold the relayed connection for up to {hold.hold_s:g} s", StepStatus.INFO,
               f"{len(during)} pings answered, {len(fails)} failed, one every {hold.ping_interval_s:g} s", hold)

    closed = first(events, CircuitClosed, connection_id=cid)
    if closed is None or closed.closer is Closer.LOCAL:
        # alive means the *last* ping on this connection was answered, not any earlier one
        attempts = sorted([*pings, *ping_failures], key=lambda e: e.t_s)
        final = attempts[-1] if attempts else None
        if isinstance(final, PingCompleted):
            b.step(f"{cid}.after", "Relayed connection at the end", StepStatus.OK,
                   f"alive: the last ping was answered at t={final.t_s:.1f} s", final)
        else:
            detail = (f"open, but the last ping failed at t={final.t_s:.1f} s ({final.error_kind.value}: "
                      f"{final.error})" if final else "open, but never pinged")
            b.step(f"{cid}.after", "Relayed connection at the end", StepStatus.FAILED, detail, final or closed)
            if final is not None:
                b.find(F.relayed_ping_failed(final.error_kind, final.error))
        return closed
    total = closed.bytes_sent + closed.bytes_received
    detail = (f"closed by the {closed.closer.value} at t={closed.t_s:.1f} s, {closed.age_s:.1f} s after it opened, "
              f"after {fmt_bytes(total)}: {closed.reason}")
    cut = attribute_cut(closed.age_s, closed.bytes_sent, closed.bytes_received, reading, data_limit)
    if closed.closer is Closer.REMOTE and cut.cause == "unexplained":
        b.step(f"{cid}.after", "Relayed connection at the end",
               StepStatus.FAILED if dialing else StepStatus.INFO, detail, closed)
        upgrade_end = first(events, WebRTCUpgradeSucceeded, relayed_connection_id=cid) or first(
            events, WebRTCUpgradeFailed, relayed_connection_id=cid)
        if upgrade_end is not None and 0 <= closed.t_s - upgrade_end.t_s <= CLOSED_AFTER_UPGRADE_S:
            b.find(F.remote_closed_after_upgrade(detail, closed.t_s - upgrade_end.t_s,
                                                 isinstance(upgrade_end, WebRTCUpgradeSucceeded)))
        elif dialing:
            b.find(F.remote_closed(secured.remote_peer_id, detail))
        return closed
    b.step(f"{cid}.after", "Relayed connection at the end", StepStatus.FAILED, detail, closed)
    # Some relays end a circuit at its limit with what looks like a clean close, not a reset;
    # a close that lands on an announced limit is the relay's doing.
    b.find(F.relay_cut(cut.cause, cut.detail, secured.relay, closed.reason))
    return closed


def diagnose_dial(trace: Trace) -> Verdict:
    events = trace.events
    b = Builder()
    target = first(events, TargetResolved)
    if target is not None:
        how = ("by full /p2p-circuit address" if target.method is DialMethod.MULTIADDR
               else f"by peer id through {len(target.relays)} relay(s) (js-libp2p's recommended practice)")
        b.step("target", f"Target peer {target.peer_id}", StepStatus.INFO, how, target)

    secured: CircuitSecured | None = None
    reading = DurationReading(None, None, False, "")
    data_limit: int | None = None
    relay_used: str | None = None
    for started in all_of(events, RelayDialStarted):
        connected, agent = relay_path(b, events, started)
        if not connected:
            continue
        status = hop_step(b, events, started.relay, agent)
        if status is None or status.status_name != "OK":
            continue
        reading = read_duration(status.announced_duration_s, agent)
        data_limit = status.announced_data_bytes or None
        if reading.suspect_unit:
            b.find(F.limit_unit_suspect(started.relay, reading))
        secured = first(events, CircuitSecured, relay=started.relay)
        upgrade_failed = first(events, CircuitUpgradeFailed, relay=started.relay)
        if secured is None:
            if upgrade_failed is not None:
                b.step("circuit.secure", "Secure session with the peer over the circuit", StepStatus.FAILED,
                       f"{upgrade_failed.error_kind.value}: {upgrade_failed.error}", upgrade_failed,
                       upgrade_failed.duration_s)
                b.find(F.circuit_handshake_failed(started.relay, upgrade_failed.error_kind, upgrade_failed.error))
            continue
        relay_used = started.relay
        b.step("circuit.secure", "Secure session with the peer over the circuit", StepStatus.OK,
               f"{secured.security or '?'}, {secured.muxer or '?'} with {secured.remote_peer_id}",
               secured, secured.duration_s)
        if reading.effective_s or data_limit:
            b.find(F.relay_limited(started.relay, reading, data_limit, secured.t_s - secured.duration_s))
        break

    upgraded = False
    if secured is not None:
        not_attempted = first(events, UpgradeNotAttempted)
        if not_attempted is not None:
            b.step("upgrade", "WebRTC upgrade", StepStatus.SKIPPED, not_attempted.reason, not_attempted)
            b.find(F.upgrade_not_attempted(not_attempted.reason))
        upgraded = upgrade_part(b, events, secured.connection_id)
        circuit_story(b, events, secured, reading, data_limit)

    if any(f.code == "webrtc-signaling-unsupported" for f in b.findings):
        # the upgrade's own finding says the same, from the negotiation itself
        b.findings = [f for f in b.findings if f.code != "peer-no-webrtc-signaling"]
    for timeout in all_of(events, StepTimedOut):
        b.find(F.step_timed_out(timeout.step, timeout.timeout_s))
    stop = first(events, RunInterrupted)
    if stop is not None:
        b.find(F.interrupted(stop.reason.value, stop.t_s))

    if stop is not None:
        outcome = Outcome.INTERRUPTED
    elif upgraded:
        outcome = Outcome.UPGRADED
    elif secured is not None:
        outcome = Outcome.RELAYED_ONLY
    else:
        outcome = Outcome.UNREACHABLE

    errors = [f for f in b.findings if f.severity is Severity.ERROR]
    peer = target.peer_id if target else "the peer"
    fallback = next((f for f in b.findings if f.code.startswith("relay-cut") or f.code.startswith("remote-closed")
                     or f.code == "relayed-ping-failed"), None)
    if outcome is Outcome.UPGRADED:
        headline = f"Upgraded to a direct WebRTC connection with {_short(peer)}."
        headline += f" The relayed connection then: {fallback.title[0].lower()}{fallback.title[1:]}." if fallback \
            else " The relayed connection held too."
    elif outcome is Outcome.RELAYED_ONLY:
        failed_upgrade = next((f for f in b.findings if f.code.startswith("webrtc-")
                               and f.severity is Severity.ERROR), None)
        headline = f"Reached {_short(peer)} through the relay; no direct connection"
        headline += f" ({failed_upgrade.title[0].lower()}{failed_upgrade.title[1:]})." if failed_upgrade else "."
        headline += f" {fallback.title}." if fallback else " The relayed connection held."
    elif outcome is Outcome.UNREACHABLE:
        headline = f"Could not reach {_short(peer)}: " + (errors[0].title[0].lower() + errors[0].title[1:]
                                                         if errors else "no relay gave a connection") + "."
    else:
        headline = "Stopped before the diagnosis was complete; the steps so far are below."
    facts: dict[str, object] = {"peer_id": target.peer_id if target else None, "relay": relay_used}
    if secured is not None:
        facts["connection_id"] = secured.connection_id
    return Verdict(trace.header.command, outcome, headline, tuple(in_time_order(b.steps)), tuple(by_severity(b.findings)), facts)


def upgrade_part(b: Builder, events: tuple[Event, ...], relayed_cid: str) -> bool:
    """The WebRTC upgrade over this relayed connection: its steps, findings and whether it worked."""
    story = upgrade_story(events, relayed_cid)
    if not story.attempted:
        return False
    b.steps.extend(story.steps)
    for finding in story.findings:
        b.find(finding)
    return story.upgraded
