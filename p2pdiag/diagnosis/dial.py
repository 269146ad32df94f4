"""Diagnosis of a `dial` (or `demo`) trace: the relay path step by step, then why, and the verdict.

The relayed connection's story (shared with listen) is told by relayed.py.
"""

from __future__ import annotations

import dataclasses

from p2pdiag.diagnosis.codes import FALLBACK_ENDS, WEBRTC, Code
from p2pdiag.diagnosis.facts import DialFacts, Fallback, FallbackState, LimitCut
from p2pdiag.diagnosis.findings import circuit as C
from p2pdiag.diagnosis.findings import run as R
from p2pdiag.diagnosis.findings import webrtc as W
from p2pdiag.diagnosis.limits import DurationReading, read_duration
from p2pdiag.diagnosis.model import Outcome, Severity, StepStatus, Verdict
from p2pdiag.diagnosis.query import all_of, first
from p2pdiag.diagnosis.relayed import (
    circuit_story,
    cut_as_cause,
    cut_title,
    hop_step,
    limit_cut,
    relay_path,
    upgrade_part,
)
from p2pdiag.diagnosis.steps import Builder, by_severity, in_time_order, short_peer_id
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitUpgradeFailed,
    DialMethod,
    RelayDialStarted,
    RunInterrupted,
    StepTimedOut,
    TargetResolved,
    UpgradeNotAttempted,
)
from p2pdiag.trace.file import Trace


def diagnose_dial(trace: Trace) -> Verdict:
    events = trace.events
    b = Builder()
    target = first(events, TargetResolved)
    if target is not None:
        how = ("by full /p2p-circuit address" if target.method is DialMethod.MULTIADDR
               else f"by peer id through {len(target.relays)} relay(s) (js-libp2p's recommended practice)")
        b.step("target", f"Target peer {target.peer_id}", StepStatus.INFO, how, target)

    secured: CircuitSecured | None = None
    limit_cut_seen: LimitCut | None = None
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
            b.find(C.limit_unit_suspect(started.relay, reading))
        secured = first(events, CircuitSecured, relay=started.relay)
        upgrade_failed = first(events, CircuitUpgradeFailed, relay=started.relay)
        if secured is None:
            if upgrade_failed is not None:
                cut = limit_cut(events, upgrade_failed.connection_id, upgrade_failed.t_s - upgrade_failed.duration_s,
                                reading, data_limit)
                b.step("circuit.secure", "Secure session with the peer over the circuit", StepStatus.FAILED,
                       f"{upgrade_failed.error_kind.value}: {upgrade_failed.error}"
                       + (f"; {cut_title(cut)}" if cut else ""), upgrade_failed, upgrade_failed.duration_s)
                b.find(C.circuit_handshake_failed(started.relay, upgrade_failed.error_kind, upgrade_failed.error))
                if cut is not None and limit_cut_seen is None:
                    closed = first(events, CircuitClosed, connection_id=cut.connection_id)
                    b.find(C.relay_cut(cut.cause, cut.detail, started.relay, closed.reason if closed else ""))
                    cut_as_cause(b, events, cut, set())
                    limit_cut_seen = cut
            continue
        relay_used = started.relay
        b.step("circuit.secure", "Secure session with the peer over the circuit", StepStatus.OK,
               f"{secured.security or '?'}, {secured.muxer or '?'} with {secured.remote_peer_id}",
               secured, secured.duration_s)
        if reading.effective_s or data_limit:
            b.find(C.relay_limited(started.relay, reading, data_limit, secured.t_s - secured.duration_s))
        break

    upgraded = False
    if secured is not None:
        not_attempted = first(events, UpgradeNotAttempted)
        if not_attempted is not None:
            b.step("upgrade", "WebRTC upgrade", StepStatus.SKIPPED, not_attempted.reason, not_attempted)
            b.find(W.upgrade_not_attempted(not_attempted.reason))
        before = {f.code for f in b.findings}
        upgraded = upgrade_part(b, events, secured.connection_id).upgraded
        upgrade_codes = {f.code for f in b.findings} - before
        ended = circuit_story(b, events, secured, reading, data_limit)
        limit_cut_seen = limit_cut(events, secured.connection_id, secured.t_s - secured.duration_s, reading,
                                   data_limit)
        if limit_cut_seen is not None and limit_cut_seen.before_checks_done:
            cut_as_cause(b, events, limit_cut_seen, upgrade_codes)

    if any(f.code is Code.WEBRTC_SIGNALING_UNSUPPORTED for f in b.findings):
        # the upgrade's own finding says the same, from the negotiation itself
        b.findings = [f for f in b.findings if f.code is not Code.PEER_NO_WEBRTC_SIGNALING]
    for timeout in all_of(events, StepTimedOut):
        b.find(R.step_timed_out(timeout.step, timeout.timeout_s))
    stop = first(events, RunInterrupted)
    if stop is not None:
        b.find(R.interrupted(stop.reason.value, stop.t_s))

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
    fallback = next((f for f in b.findings if f.code in FALLBACK_ENDS), None)
    if outcome is Outcome.UPGRADED:
        headline = f"Upgraded to a direct WebRTC connection with {short_peer_id(peer)}."
        headline += f" The relayed connection then: {fallback.title[0].lower()}{fallback.title[1:]}." if fallback \
            else " The relayed connection held too."
    elif outcome is Outcome.RELAYED_ONLY and limit_cut_seen is not None and limit_cut_seen.before_checks_done:
        headline = (f"Reached {short_peer_id(peer)} through the relay, then {cut_title(limit_cut_seen)}, during "
                    f"{limit_cut_seen.doing()}; no direct connection.")
    elif outcome is Outcome.RELAYED_ONLY:
        failed_upgrade = next((f for f in b.findings if f.code in WEBRTC and f.severity is Severity.ERROR), None)
        headline = f"Reached {short_peer_id(peer)} through the relay; no direct connection"
        headline += f" ({failed_upgrade.title[0].lower()}{failed_upgrade.title[1:]})." if failed_upgrade else "."
        headline += f" {fallback.title}." if fallback else " The relayed connection held."
    elif outcome is Outcome.UNREACHABLE and limit_cut_seen is not None:
        headline = (f"Could not reach {short_peer_id(peer)}: {cut_title(limit_cut_seen)}, "
                    f"during {limit_cut_seen.doing()}.")
    elif outcome is Outcome.UNREACHABLE:
        headline = f"Could not reach {short_peer_id(peer)}: " + (errors[0].title[0].lower() + errors[0].title[1:]
                                                         if errors else "no relay gave a connection") + "."
    else:
        headline = "Stopped before the diagnosis was complete; the steps so far are below."
    if limit_cut_seen is not None:
        code = C.CUT_CODE[limit_cut_seen.cause]
        b.findings = [dataclasses.replace(f, data={**f.data, **limit_cut_seen.as_fact()}) if f.code is code else f
                      for f in b.findings]
    relayed_end = Fallback(ended if secured is not None else FallbackState.NONE,
                        secured.connection_id if secured is not None else None, limit_cut_seen)
    facts = DialFacts(target.peer_id if target else None, relay_used, relayed_end)
    return Verdict(trace.header.command, outcome, headline, tuple(in_time_order(b.steps)),
                   tuple(by_severity(b.findings)), facts)
