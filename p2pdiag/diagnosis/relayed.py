"""The relayed connection, told step by step: the relay's connect and identify, HOP CONNECT, the
secured circuit, identify, ping, limits, hold and how it ended, the WebRTC upgrade over it, and a
relay's cut at a limit as the cause of what failed after it.

Shared by dial.py (the connection we dialed) and listen.py (each inbound one) and reconnect.py.
"""

from __future__ import annotations

import dataclasses

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.facts import FallbackState, LimitCut
from p2pdiag.diagnosis.findings import circuit as C
from p2pdiag.diagnosis.findings import relay as RL
from p2pdiag.diagnosis.limits import CutCause, DurationReading, attribute_cut, fmt_bytes, fmt_seconds, read_duration
from p2pdiag.diagnosis.model import Finding, Severity, StepStatus
from p2pdiag.diagnosis.query import all_of, count, first, last
from p2pdiag.diagnosis.steps import Builder, limit_text
from p2pdiag.diagnosis.upgrade import UpgradeStory, upgrade_story
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitTraffic,
    Closer,
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
    Subject,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
    WebRTCUpgradeSucceeded,
)
from p2pdiag.webrtc.signaling import PROTOCOL as SIGNALING_PROTOCOL
from p2pdiag.wire.circuit import HOP_PROTOCOL

# A relayed connection the peer closes this soon after an upgrade attempt ended was closed
# because of the attempt (js-libp2p #3015), not for a reason of its own.
CLOSED_AFTER_UPGRADE_S = 10.0
# A failure recorded this long before the circuit's end is still taken as its consequence: the
# end is stamped when the circuit stream's read fails, the layers above fail right after, but the
# two clocks readings can straddle a scheduler tick.
CUT_CONSEQUENCE_SLACK_S = 0.05


def relay_path(b: Builder, events: tuple[Event, ...], started: RelayDialStarted,
               unanswered_is_finding: bool = False) -> tuple[bool, str | None]:
    """Steps for one relay's connect + identify; returns (connected, relay agent).

    `unanswered_is_finding`: a connect that neither succeeded nor failed before the run stopped is
    the relay's silence (listen, where the run's end is the normal end), not an unfinished run (dial)."""
    relay = started.relay
    connected = first(events, RelayConnected, relay=relay)
    failed = first(events, RelayDialFailed, relay=relay)
    if connected is None:
        if failed is not None:
            b.step("relay.connect", f"Connect to relay {relay}", StepStatus.FAILED,
                   f"{failed.error_kind.value}: {failed.error}", failed, failed.duration_s)
            b.find(RL.relay_unreachable(failed))
        else:
            b.step("relay.connect", f"Connect to relay {relay}", StepStatus.FAILED, "no answer before the run ended",
                   started)
            stop = first(events, RunInterrupted)
            if unanswered_is_finding and stop is not None:
                b.find(RL.relay_silent(relay, stop.t_s - started.t_s))
        return False, None
    b.step("relay.connect", f"Connect to relay {relay}", StepStatus.OK,
           f"{started.transport}, {connected.security or '?'}, {connected.muxer or '?'}",
           connected, connected.duration_s)
    ident = first(events, IdentifyCompleted, subject=Subject.RELAY, peer_id=started.relay_peer_id)
    ident_failed = first(events, IdentifyFailed, subject=Subject.RELAY, peer_id=started.relay_peer_id)
    agent = None
    if ident is not None:
        agent = ident.agent_version
        hop = HOP_PROTOCOL in ident.protocols
        observed = f", sees us as {ident.observed_addr}" if ident.observed_addr else ""
        b.step("relay.identify", "Identify the relay", StepStatus.OK if hop else StepStatus.FAILED,
               f"{agent or 'no agent'}; HOP {'offered' if hop else 'NOT offered'}{observed}",
               ident, ident.duration_s)
        if not hop:
            listed = f"identify lists {len(ident.protocols)} protocols, not {HOP_PROTOCOL}"
            b.find(RL.relay_no_hop(relay, agent, listed))
    elif ident_failed is not None:
        b.step("relay.identify", "Identify the relay", StepStatus.WARNING,
               f"{ident_failed.error_kind.value}: {ident_failed.error}", ident_failed, ident_failed.duration_s)
        b.find(RL.identify_failed("relay", started.relay_peer_id, ident_failed.error_kind, ident_failed.error))
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
            b.find(RL.hop_refused(status))
        return status
    if failed is not None:
        b.step("hop.connect", "Ask the relay to connect us (HOP CONNECT)", StepStatus.FAILED,
               f"{failed.error_kind.value} while {failed.stage}: {failed.error}", failed, failed.duration_s)
        b.find(RL.hop_unanswered(relay, failed.stage, failed.error_kind, failed.error, agent))
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
) -> FallbackState:
    """Steps from the secured relayed connection to its end; shared by dial and listen. Returns how it
    ended: held, lost, or cut (by the relay or the other side).

    `subject` is "peer" when we dialed and "dialer" when we listened: a dialer closing its
    connection when it is done is normal, and whether it offers WebRTC signaling does not
    matter to the side that answers.
    """
    dialing = subject == "peer"
    cid = secured.connection_id
    ident = first(events, IdentifyCompleted, subject=Subject.PEER, connection_id=cid)
    ident_failed = first(events, IdentifyFailed, subject=Subject.PEER, connection_id=cid)
    if ident is not None:
        signaling = SIGNALING_PROTOCOL in ident.protocols
        b.step(f"{cid}.identify", f"Identify the {subject} over the relayed connection", StepStatus.OK,
               f"{ident.agent_version or 'no agent'}; WebRTC signaling {'offered' if signaling else 'not offered'}",
               ident, ident.duration_s)
        if not signaling and dialing:
            b.find(C.peer_no_signaling(secured.remote_peer_id, ident.agent_version, ident.protocols))
    elif ident_failed is not None:
        b.step(f"{cid}.identify", f"Identify the {subject} over the relayed connection", StepStatus.WARNING,
               f"{ident_failed.error_kind.value}: {ident_failed.error}", ident_failed, ident_failed.duration_s)
        b.find(RL.identify_failed(subject, secured.remote_peer_id, ident_failed.error_kind, ident_failed.error))

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
            b.find(C.relayed_ping_failed(pf.error_kind, pf.error))

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
        during = count(events, PingCompleted, hold.t_s, connection_id=cid, path=Path.RELAYED)
        fails = count(events, PingFailed, hold.t_s, connection_id=cid, path=Path.RELAYED)
        b.step(f"{cid}.hold", f"Hold the relayed connection for up to {hold.hold_s:g} s", StepStatus.INFO,
               f"{during} pings answered, {fails} failed, one every {hold.ping_interval_s:g} s", hold)

    closed = first(events, CircuitClosed, connection_id=cid)
    if closed is None or closed.closer is Closer.LOCAL:
        # alive means the *last* ping on this connection was answered, not any earlier one
        attempts = sorted([*pings, *ping_failures], key=lambda e: e.t_s)
        final = attempts[-1] if attempts else None
        if isinstance(final, PingCompleted):
            b.step(f"{cid}.after", "Relayed connection at the end", StepStatus.OK,
                   f"alive: the last ping was answered at t={final.t_s:.1f} s", final)
            return FallbackState.HELD
        else:
            detail = (f"open, but the last ping failed at t={final.t_s:.1f} s ({final.error_kind.value}: "
                      f"{final.error})" if final else "open, but never pinged")
            b.step(f"{cid}.after", "Relayed connection at the end", StepStatus.FAILED, detail, final or closed)
            if final is not None:
                b.find(C.relayed_ping_failed(final.error_kind, final.error))
        return FallbackState.LOST
    total = closed.bytes_sent + closed.bytes_received
    detail = (f"closed by the {closed.closer.value} at t={closed.t_s:.1f} s, {closed.age_s:.1f} s after it opened, "
              f"after {total} bytes ({fmt_bytes(total)}): {closed.reason}")
    cut = attribute_cut(closed.age_s, closed.bytes_sent, closed.bytes_received, reading, data_limit)
    if closed.closer is Closer.REMOTE and cut.cause == "unexplained":
        b.step(f"{cid}.after", "Relayed connection at the end",
               StepStatus.FAILED if dialing else StepStatus.INFO, detail, closed)
        upgrade_end = first(events, WebRTCUpgradeSucceeded, relayed_connection_id=cid) or first(
            events, WebRTCUpgradeFailed, relayed_connection_id=cid)
        if upgrade_end is not None and 0 <= closed.t_s - upgrade_end.t_s <= CLOSED_AFTER_UPGRADE_S:
            b.find(C.remote_closed_after_upgrade(detail, closed.t_s - upgrade_end.t_s,
                                                 isinstance(upgrade_end, WebRTCUpgradeSucceeded), subject))
        elif dialing:
            b.find(C.remote_closed(secured.remote_peer_id, detail))
        return FallbackState.CUT
    b.step(f"{cid}.after", "Relayed connection at the end", StepStatus.FAILED, detail, closed)
    # Some relays end a circuit at its limit with what looks like a clean close, not a reset;
    # a close that lands on an announced limit is the relay's doing.
    b.find(C.relay_cut(cut.cause, cut.detail, secured.relay, closed.reason))
    return FallbackState.CUT


def limit_cut(events: tuple[Event, ...], cid: str, opened_t_s: float, reading: DurationReading,
              data_limit: int | None) -> LimitCut | None:
    """The relayed connection `cid` (opened at `opened_t_s`), if the relay ended it at a limit."""
    closed = first(events, CircuitClosed, connection_id=cid)
    if closed is None or closed.closer is Closer.LOCAL:
        return None
    cut: CutCause = attribute_cut(closed.age_s, closed.bytes_sent, closed.bytes_received, reading, data_limit)
    if cut.cause not in ("data", "duration"):
        return None
    at = opened_t_s + closed.age_s
    during, step = _running_at(events, cid, at)
    return LimitCut(cut.cause, cut.detail, cid, closed.bytes_sent, closed.bytes_received, closed.age_s, at, during,
                    step, data_limit, reading.effective_s)


def _running_at(events: tuple[Event, ...], cid: str, t: float) -> tuple[str, str | None]:
    """What `dial` was doing over the relayed connection at run time t (probes/dial.py's order)."""
    if first(events, CircuitSecured, connection_id=cid) is None:
        return "secure", None
    ident = first(events, IdentifyCompleted, subject=Subject.PEER, connection_id=cid)
    if ident is None or ident.t_s >= t:
        return "identify", None
    if not any(p.t_s < t for p in all_of(events, PingCompleted, connection_id=cid, path=Path.RELAYED)):
        return "ping", None
    started = first(events, WebRTCUpgradeStarted, relayed_connection_id=cid)
    if started is not None and started.t_s <= t:
        failed = first(events, WebRTCUpgradeFailed, relayed_connection_id=cid)
        ended = first(events, WebRTCUpgradeSucceeded, relayed_connection_id=cid) or failed
        if ended is None or ended.t_s >= t:
            return "upgrade", failed.step.value if failed is not None else None
    hold = first(events, HoldStarted, connection_id=cid)
    if hold is not None and hold.t_s <= t:
        return "hold", None
    return "final-ping", None


def cut_as_cause(b: Builder, events: tuple[Event, ...], cut: LimitCut, upgrade_codes: set[Code]) -> None:
    """The relay's cut came while p2pdiag was still checking the peer: it is the verdict's cause, and
    what failed after it (handshake, identify, ping, the upgrade's signaling) failed because of it."""
    after = cut.at_t_s - CUT_CONSEQUENCE_SLACK_S
    consequences: set[Code] = set()
    if cut.during == "secure":
        consequences.add(Code.CIRCUIT_HANDSHAKE_FAILED)
    ident_failed = first(events, IdentifyFailed, subject=Subject.PEER, connection_id=cut.connection_id)
    if ident_failed is not None and ident_failed.t_s >= after:
        consequences.add(Code.IDENTIFY_FAILED)
    ping_failed = first(events, PingFailed, connection_id=cut.connection_id, path=Path.RELAYED)
    if ping_failed is not None and ping_failed.t_s >= after:
        consequences.add(Code.RELAYED_PING_FAILED)
    upgrade_failed = first(events, WebRTCUpgradeFailed, relayed_connection_id=cut.connection_id)
    if upgrade_failed is not None and upgrade_failed.t_s >= after:
        consequences |= upgrade_codes
    code = C.CUT_CODE[cut.cause]
    note = f"this came after the relay cut the relayed connection at t={cut.at_t_s:.2f} s ({code})"
    cause: list[Finding] = []
    rest: list[Finding] = []
    for f in b.findings:
        if f.code is code:
            cause.append(dataclasses.replace(f, severity=Severity.ERROR, evidence=(
                *f.evidence, (f"the relay cut it during {cut.doing()}, before p2pdiag's checks of the peer "
                "were done: what failed after that failed because of the cut"))))
        elif f.code in consequences:
            rest.append(dataclasses.replace(f, severity=Severity.WARNING if f.severity is Severity.ERROR
                                            else f.severity, evidence=(*f.evidence, note)))
        else:
            rest.append(f)
    b.findings = cause + rest


def cut_title(cut: LimitCut) -> str:
    if cut.cause == "data":
        return (f"the relay cut the relayed connection at its data limit, at {cut.total_bytes} bytes "
                f"(limit {cut.data_limit} bytes)")
    limit = (fmt_seconds(cut.duration_limit_s) if cut.duration_limit_s
             else "under a second, announced as 0")
    return f"the relay cut the relayed connection at its duration limit, after {cut.age_s:.1f} s (limit {limit})"


def upgrade_part(b: Builder, events: tuple[Event, ...], relayed_cid: str) -> UpgradeStory:
    """The WebRTC upgrade over this relayed connection: its steps and findings added; the story told."""
    story = upgrade_story(events, relayed_cid)
    if not story.attempted:
        return story
    b.steps.extend(story.steps)
    for finding in story.findings:
        b.find(finding)
    return story
