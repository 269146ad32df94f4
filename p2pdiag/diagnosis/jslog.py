"""Diagnosis of a js-libp2p dialer's debug log: the same steps and finding codes a `p2pdiag dial`
through that relay to that peer would give, each as sure as the log lets it be.

Pure, like the trace diagnoses: the facts come from evidence/jslog.py. The findings are worded
by diagnosis/findings/ (the same constructors the dial diagnosis uses); what differs is the
evidence (a log line, cited by its number) and the confidence: a log states less than a probe
records, so what is inferred from it (a cut's cause from its timing, an unrecorded byte count)
says so and says what would settle it.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from typing import TypeVar

from p2pdiag.diagnosis.codes import FALLBACK_ENDS, WEBRTC, Code
from p2pdiag.diagnosis.facts import LogFacts, LogRead
from p2pdiag.diagnosis.findings import circuit as C
from p2pdiag.diagnosis.findings import reconnect as R
from p2pdiag.diagnosis.findings import relay as RL
from p2pdiag.diagnosis.findings import webrtc as W
from p2pdiag.diagnosis.limits import DurationReading, attribute_cut, fmt_bytes, fmt_seconds, read_duration
from p2pdiag.diagnosis.model import Confidence, Finding, Outcome, Severity, StepStatus, Verdict
from p2pdiag.diagnosis.reconnect import LOOP_MIN_ROUNDS
from p2pdiag.diagnosis.relayed import CLOSED_AFTER_UPGRADE_S
from p2pdiag.diagnosis.steps import Builder, by_severity, in_time_order, limit_text, short_peer_id
from p2pdiag.evidence.events import (
    AddressDialed,
    ConnectionClosing,
    DialRequested,
    LimitedStreamRefused,
    LogFact,
    NodeStopping,
    PeerIdentified,
    ProtocolRefused,
    RelayedConnectionAborted,
    RelayedConnectionOpened,
    RelayRefused,
    ReservationCreated,
    WebRTCFailed,
    WebRTCStep,
    WebRTCUpgraded,
)
from p2pdiag.evidence.jslog import LAYOUTS, JsLog
from p2pdiag.webrtc.signaling import PROTOCOL as SIGNALING_PROTOCOL
from p2pdiag.wire.circuit import HOP_PROTOCOL

F = TypeVar("F", bound=LogFact)
COMMAND = "analyze"
TRACE_SETTLE = ("enable `DEBUG=libp2p:*,*:trace` on that node, reproduce, and send the log again: trace "
                "lines count the bytes written into the circuit and show each WebRTC step")
CANDIDATE_SETTLE = ("the same dial again: js-libp2p's node-datachannel refuses, now and then, a candidate that "
                    "comes before its ICE transport is ready; a second failure alike is the peer's candidates")
ICE_SETTLE = ("`p2pdiag dial` to the same peer from that network (it reads the ICE checks and probes UDP), or "
              "`p2pdiag nat` there: is any UDP answered?")
DIAL_SETTLE = "run `p2pdiag dial` to the same peer through the same relay from that network, with `--hold`"


def _first(facts: list[LogFact], kind: type[F], **match: object) -> F | None:
    for f in facts:
        if isinstance(f, kind) and all(getattr(f, k) == v for k, v in match.items()):
            return f
    return None


def _all(facts: list[LogFact], kind: type[F]) -> list[F]:
    return [f for f in facts if isinstance(f, kind)]


def at_line(log: JsLog, fact: LogFact) -> str:
    when = f" (t={fact.t_s:.3f} s)" if fact.t_s is not None else ""
    return f"{log.name}:{fact.line}{when}"


def cited(f: Finding, evidence: tuple[str, ...], confidence: Confidence | None = None,
           settle: str | None = None) -> Finding:
    """A finding's wording with the log's evidence; a confidence other than certain always has a settle."""
    confidence = confidence or f.confidence
    settle = settle or f.settle
    if confidence is not Confidence.CERTAIN and not settle:
        settle = DIAL_SETTLE
    return dataclasses.replace(f, evidence=evidence, confidence=confidence,
                               settle=settle if confidence is not Confidence.CERTAIN else None)


def log_read(log: JsLog) -> LogRead:
    lacks = []
    if not log.has_trace_level:
        lacks.append("trace level (`*:trace`): no circuit byte counts, no WebRTC steps")
    if log.layout == "browser-raw":
        lacks.append("timestamps (a console forwarded unformatted carries none): no timing")
    elif log.layout.startswith("browser") and not log.has_times:
        lacks.append("timestamps (Chrome's console copied without \"Show timestamps\"): no timing")
    elif not log.has_times:
        lacks.append("absolute timestamps: no timing")
    if log.times_of_day_only:
        lacks.append("a date and a time zone: Chrome's timestamps are times of day (timing is relative; "
                     "a day is counted where the clock goes back past midnight)")
    lacks.append("the relay's agent version (js-libp2p does not log identify's agent)")
    lacks.append("the library versions (a debug log does not print them)")
    if log.libp2p_2x:
        lacks.append("the relayed connection's Limit (js-libp2p 2.x does not log it)")
    if log.facts_dropped:
        lacks.append(f"{log.facts_dropped} facts past the first {len(log.facts)} (not kept)")
    return LogRead("js-libp2p debug log", log.layout, log.lines, log.records, log.recognised, log.unrecognised,
                   log.continuation, log.foreign, log.first_time, log.last_time, log.span_s, log.has_trace_level,
                   "2.x" if log.libp2p_2x else "3.x", tuple(lacks))


def read_step(b: Builder, log: JsLog) -> LogRead:
    """The verdict's first step: what was read of the log, and what it lacks."""
    read = log_read(log)
    span = f", {read.span_s:.3f} s from {read.first_time} to {read.last_time}" if read.span_s is not None else ""
    layout = LAYOUTS.get(read.layout, read.layout)
    b.step("log.read", f"Read a js-libp2p {read.namespaces} debug log: {layout}", StepStatus.INFO,
           f"{read.lines} lines, {read.records} records: {read.recognised} recognised, {read.unrecognised} not"
           f"{span}; lacks: " + "; ".join(read.lacks))
    b.steps[-1] = dataclasses.replace(b.steps[-1], t_s=0.0 if log.has_times else None)
    return read


def _relay_of(address: str) -> str:
    return address.split("/p2p-circuit", 1)[0]


def diagnose_jslog(log: JsLog) -> Verdict:
    if _is_a_listener_log(log):
        from p2pdiag.diagnosis.jslog_listener import diagnose_listener_log

        return diagnose_listener_log(log)
    facts = log.facts
    b = Builder()
    read = read_step(b, log)
    circuit_dials = [d for d in _all(facts, AddressDialed) if "/p2p-circuit" in d.address]
    # the target is the peer the first relayed address names; a node that also listens (a browser
    # app) dialed its relay first, so the first dial alone is not the target
    target = circuit_dials[0].address.rsplit("/p2p/", 1)[-1] if circuit_dials else None
    requested = (_first(facts, DialRequested, peer_id=target) if target else None) or _first(facts, DialRequested)
    peer = requested.peer_id if requested else target
    if requested is not None:
        b.step("target", f"Target peer {peer}", StepStatus.INFO, f"dialed at {at_line(log, requested)}", requested)

    relay = _relay_of(circuit_dials[0].address) if circuit_dials else None
    relay_id = relay.rsplit("/p2p/", 1)[-1] if relay and "/p2p/" in relay else None
    if relay is not None:
        connected = _first(facts, AddressDialed, address=relay, ok=True)
        if connected is not None:
            b.step("relay.connect", f"Connect to relay {relay}", StepStatus.OK, f"at {at_line(log, connected)}",
                   connected)
        ident = _first(facts, PeerIdentified, peer_id=relay_id)
        if ident is not None:
            hop = HOP_PROTOCOL in ident.protocols
            b.step("relay.identify", "Identify the relay", StepStatus.OK if hop else StepStatus.FAILED,
                   f"HOP {'offered' if hop else 'NOT offered'} ({at_line(log, ident)})", ident)
            if not hop:
                f = RL.relay_no_hop(relay, None, f"identify lists {len(ident.protocols)} protocols, not {HOP_PROTOCOL}")
                b.find(cited(f, (f"{at_line(log, ident)}: {relay_id} offers {', '.join(ident.protocols)}",)))

    refused = _first(facts, RelayRefused)
    if refused is not None:
        b.step("hop.connect", "Ask the relay to connect us (HOP CONNECT)", StepStatus.FAILED,
               f"STATUS {refused.status_name} ({at_line(log, refused)})", refused)
        b.find(RL.hop_refused_named(refused.status_name, f"{at_line(log, refused)}: HOP STATUS {refused.status_name} "
                                    f"from relay {refused.relay_peer_id} for {refused.peer_id}"))

    opened = _first(facts, RelayedConnectionOpened, outbound=True)
    reading = DurationReading(None, None, False, "")
    cut: dict[str, object] | None = None
    if opened is not None:
        reading = read_duration(opened.duration_limit, None)
        data_limit = opened.data_limit_bytes or None
        cut, reading = _cut(b, log, opened, relay or "the relay", reading, data_limit)  # may re-read the unit
        unlogged = log.libp2p_2x and opened.duration_limit is None and opened.data_limit_bytes is None
        b.step("hop.connect", "Ask the relay to connect us (HOP CONNECT)", StepStatus.OK,
               "STATUS OK; limit: " + ("not in a js-libp2p 2.x log" if unlogged else limit_text(reading, data_limit)),
               opened)
        b.step("circuit.secure", "Secure session with the peer over the circuit", StepStatus.OK,
               f"relayed connection {opened.connection} to {opened.peer_id} ({at_line(log, opened)})", opened)
        if reading.suspect_unit:
            b.find(cited(C.limit_unit_suspect(relay or "the relay", reading),
                          (f"{at_line(log, opened)}: Limit.duration = {reading.announced}", reading.reason)))
        if reading.effective_s or data_limit:
            b.find(cited(C.relay_limited(relay or "the relay", reading, data_limit, opened.t_s),
                          (f"{at_line(log, opened)}: limits {{ duration: {reading.announced}, data: {data_limit} }}",)))

    _limited_streams(b, log)
    upgraded = _upgrade(b, log, peer)
    loop = _closed_after_attempts(b, log, peer, upgraded)
    if opened is not None and not _upgrade_tried(log):
        reason = "the log shows no dial of a /webrtc address: the node dialed the relayed address only"
        b.step("upgrade", "WebRTC upgrade", StepStatus.SKIPPED, reason)
        thin = None if log.has_trace_level else Confidence.POSSIBLE
        b.find(cited(W.upgrade_not_attempted(reason, "The relay findings above still hold; to get a direct "
                                              "connection the node must dial the peer's /p2p-circuit/webrtc "
                                              "address (or have WebRTC in its transports)."),
                      (reason,), thin, TRACE_SETTLE if thin else None))
    if any(f.code is Code.WEBRTC_SIGNALING_UNSUPPORTED for f in b.findings):
        b.findings = [f for f in b.findings if f.code is not Code.PEER_NO_WEBRTC_SIGNALING]

    if upgraded is not None:
        outcome = Outcome.UPGRADED
    elif opened is not None:
        outcome = Outcome.RELAYED_ONLY
    else:
        outcome = Outcome.UNREACHABLE
    headline = _headline(outcome, b.findings, peer or "the peer", cut)
    details = LogFacts(read, peer, relay, opened.connection if opened else None,
                       upgraded.connection if upgraded else None, cut, loop)
    return Verdict(COMMAND, outcome, headline, tuple(in_time_order(b.steps)), tuple(by_severity(b.findings)), details)


def _is_a_listener_log(log: JsLog) -> bool:
    """A listening node's log: a reservation or inbound relayed connections, and no relayed dial of its own."""
    if _first(log.facts, RelayedConnectionOpened, outbound=True) is not None \
            or any(isinstance(f, AddressDialed) and "/p2p-circuit" in f.address for f in log.facts):
        return False
    return _first(log.facts, ReservationCreated) is not None \
        or any(not f.outbound for f in _all(log.facts, RelayedConnectionOpened))


def _cut(b: Builder, log: JsLog, opened: RelayedConnectionOpened, relay: str, reading: DurationReading,
         data_limit: int | None) -> tuple[dict[str, object] | None, DurationReading]:
    """The relay's cut of the relayed connection: its circuit stream reset before this node closed it."""
    facts = log.facts
    closing = _first(facts, ConnectionClosing, connection=opened.connection)
    reset = next((a for a in _all(facts, RelayedConnectionAborted)
                  if a.connection == opened.connection and "StreamResetError" in a.error
                  and (closing is None or a.line < closing.line)), None)
    if reset is None:
        if closing is not None:
            b.step("circuit.end", "The relayed connection", StepStatus.OK,
                   f"closed by this node ({at_line(log, closing)})", closing)
        return None, reading
    written = log.circuit_bytes_written.get(opened.connection) if log.has_trace_level else None
    age = reset.t_s - opened.t_s if reset.t_s is not None and opened.t_s is not None else None
    if age is None:
        cause, detail = "unexplained", "the log has no times, so the cut cannot be set against the duration limit"
    else:
        attributed = attribute_cut(age, written or 0, 0, reading, data_limit)
        announced = reading.announced
        if attributed.cause == "unexplained" and announced and not reading.suspect_unit and announced % 1000 == 0:
            # a js relay writes milliseconds, and js-libp2p does not log the relay's agent to tell us so:
            # a cut at the announced value read as milliseconds is that limit
            as_ms = DurationReading(announced, announced / 1000, True,
                                    f"the relay cut after {age:.1f} s: it counts this {announced} in milliseconds "
                                    f"({fmt_seconds(announced / 1000)}), as js-libp2p relays do")
            again = attribute_cut(age, written or 0, 0, as_ms, data_limit)
            if again.cause == "duration":
                attributed, reading = again, as_ms
        cause, detail = attributed.cause, attributed.detail
        if cause == "data":
            detail = (f"cut after {written} bytes written into the circuit (what came back is not in the log) "
                      f"against an announced data limit of {fmt_bytes(data_limit)} ({data_limit} bytes) per direction")
    b.step("circuit.end", "The relayed connection", StepStatus.FAILED,
           f"reset by the relay {'' if age is None else f'{age:.3f} s after it opened '}({at_line(log, reset)})", reset)
    if cause == "unexplained":
        confidence = Confidence.POSSIBLE
        settle = TRACE_SETTLE if not log.has_trace_level or age is None else "the relay's own log for this circuit"
    elif cause == "data" or log.has_trace_level:
        confidence, settle = Confidence.LIKELY, None
    else:
        confidence, settle = Confidence.POSSIBLE, TRACE_SETTLE
    f = C.relay_cut(cause, detail, relay, reset.error)
    b.find(cited(f, (detail, f"{at_line(log, reset)}: {reset.error}"), confidence, settle))
    return {"cause": cause, "connection": opened.connection, "age_s": None if age is None else round(age, 3),
            "bytes_written": written, "data_limit": data_limit, "duration_limit_s": reading.effective_s}, reading


def _limited_streams(b: Builder, log: JsLog) -> None:
    """Streams js-libp2p refused on a limited (relayed) connection: one finding per protocol, read from its line."""
    seen: set[str | None] = set()
    for refused in _all(log.facts, LimitedStreamRefused):
        if refused.protocol in seen:
            continue
        seen.add(refused.protocol)
        on = f" (relayed connection {refused.connection})" if refused.connection else ""
        evidence = (f"{at_line(log, refused)}: {refused.error}{on}",)
        if refused.protocol:
            evidence += (f"the stream had negotiated {refused.protocol} just before",)
        b.find(C.limited_stream_refused(refused.protocol, refused.opened_by_remote, evidence))


def _upgrade_tried(log: JsLog) -> bool:
    """A WebRTC dial is in the log: its trace-level step, or a /webrtc address the dial queue dialed."""
    return (any(isinstance(f, WebRTCStep) for f in log.facts)
            or any(isinstance(f, AddressDialed) and "/webrtc" in f.address for f in log.facts))


def _upgrade(b: Builder, log: JsLog, peer: str | None) -> WebRTCUpgraded | None:
    facts = log.facts
    steps = _all(facts, WebRTCStep)
    webrtc_dials = [d for d in _all(facts, AddressDialed) if "/webrtc" in d.address]
    if not _upgrade_tried(log):
        return None
    ident = _first(facts, PeerIdentified, peer_id=peer) if peer else None
    if ident is not None and SIGNALING_PROTOCOL not in ident.protocols:
        f = C.peer_no_signaling(ident.peer_id, None, ident.protocols)
        b.find(cited(f, (f"{at_line(log, ident)}: {ident.peer_id} offers {', '.join(ident.protocols)}",)))
    upgraded = _working_upgrade(log, peer)
    refused = _first(facts, ProtocolRefused, protocol=SIGNALING_PROTOCOL)
    failed = _first(facts, WebRTCFailed)
    if upgraded is not None:
        done = [s.step for s in steps]
        b.step("upgrade", "WebRTC upgrade", StepStatus.OK,
               f"connection {upgraded.connection} ({at_line(log, upgraded)})"
               + (f"; steps seen: {', '.join(done)}" if done else "; no trace-level steps in the log"), upgraded)
        return upgraded
    if refused is not None:
        b.step("upgrade", "WebRTC upgrade", StepStatus.FAILED, f"{refused.error} ({at_line(log, refused)})", refused)
        b.find(cited(W.signaling_unsupported(peer or "the peer", refused.error),
                      (f"{at_line(log, refused)}: {refused.error}",)))
        return None
    refused_candidates = [s for s in steps if s.step == "candidate-refused"]
    received = [s for s in steps if s.step == "remote-candidate"]
    if refused_candidates and len(refused_candidates) >= len(received):
        # every candidate the peer trickled was refused by this side's ICE agent: nothing to check
        f = W.no_remote_candidates([], [], [])
        b.find(cited(f, (f"{len(received)} candidate(s) received, every one refused here",
                          *(f"{at_line(log, r)}: {r.detail}" for r in refused_candidates[:2])),
                      Confidence.LIKELY, CANDIDATE_SETTLE))
    elif received and not any(s.step == "connected" for s in steps) and (failed is not None or any(
            not d.ok for d in webrtc_dials)):
        # the candidates went across and were taken, yet no path came up before js-libp2p gave up
        said = [s.step for s in steps]
        evidence = [f"{len(received)} remote candidate(s) received, {len(refused_candidates)} refused; steps seen: "
                    + ", ".join(dict.fromkeys(said)),
                    *(f"{at_line(log, r)}: {r.detail}" for r in received[:2])]
        if failed is not None:
            evidence.append(f"{at_line(log, failed)}: {failed.what}")
        states_failed = failed is not None and "state" in failed.what
        b.find(cited(W.ice_not_connected(tuple(evidence), Confidence.LIKELY if states_failed else Confidence.POSSIBLE,
                                          ICE_SETTLE), tuple(evidence)))
    failed_dial = next((d for d in webrtc_dials if not d.ok), None)
    what = failed.what if failed else (failed_dial.error if failed_dial else "no upgraded connection in the log")
    at = failed or failed_dial
    b.step("upgrade", "WebRTC upgrade", StepStatus.FAILED, what + (f" ({at_line(log, at)})" if at else ""), at)
    return None


def _working_upgrade(log: JsLog, peer: str | None) -> WebRTCUpgraded | None:
    """The upgraded WebRTC connection. A 2.x one counts when identify with the peer completed after it and
    before any WebRTC failure: @libp2p/webrtc 5.2.20 also "upgrades" when the signaling stream merely
    ended, and that connection opens no stream and is closed on an error."""
    ups = _all(log.facts, WebRTCUpgraded)
    if not log.libp2p_2x:
        return ups[0] if ups else None
    for up in ups:
        failed = next((f for f in _all(log.facts, WebRTCFailed) if f.line > up.line), None)
        if any(i.line > up.line and (failed is None or i.line < failed.line) and i.peer_id == peer
               for i in _all(log.facts, PeerIdentified)):
            return up
    return None


def _closed_after_attempts(b: Builder, log: JsLog, peer: str | None,
                           upgraded: WebRTCUpgraded | None) -> dict[str, object] | None:
    """Relayed connections to the peer that this node closed itself right after a WebRTC attempt ended
    (before the node began to stop): js-libp2p #3015, @libp2p/webrtc up to 5.2.20. Three or more with
    no working upgrade are a reconnect loop: something (the app, or js-libp2p's reconnect queue for a
    keep-alive peer) dials again each time. Returns the loop's facts."""
    facts = log.facts
    stop = _first(facts, NodeStopping)
    opened = [o for o in _all(facts, RelayedConnectionOpened) if o.outbound and peer in (None, o.peer_id)]
    ends = [f for f in facts if isinstance(f, WebRTCFailed) or (isinstance(f, WebRTCStep) and f.step == "connected")]
    rounds = []
    for k, o in enumerate(opened):
        before = opened[k + 1].line if k + 1 < len(opened) else None
        closing = next((c for c in _all(facts, ConnectionClosing) if c.connection == o.connection
                        and o.line < c.line and (before is None or c.line < before)), None)
        if closing is None or (stop is not None and closing.line > stop.line):
            continue
        end = next((e for e in reversed(ends) if o.line < e.line <= closing.line), None)
        if end is None or end.t_s is None or closing.t_s is None or closing.t_s - end.t_s > CLOSED_AFTER_UPGRADE_S:
            continue
        rounds.append((o, closing, end))
    if not rounds:
        return None
    o, closing, end = rounds[0]
    after = closing.t_s - end.t_s
    worked = upgraded is not None and o.line < upgraded.line
    detail = (f"{at_line(log, closing)}: this node closed its relayed connection to {o.peer_id} {after:.3f} s after "
              f"the WebRTC attempt ended ({at_line(log, end)}: {getattr(end, 'what', 'connected')}); "
              f"{len(rounds)} relayed connection(s) closed so in this log")
    b.find(cited(C.remote_closed_after_upgrade(detail, after, worked, "dialer"), (detail,)))
    if len(rounds) < LOOP_MIN_ROUNDS or upgraded is not None:
        return None
    starts = [r[0].t_s for r in rounds]
    intervals = [round(later - earlier, 3) for earlier, later in itertools.pairwise(starts)]
    period = round(statistics.median(intervals), 3)
    evidence = [f"{len(rounds)} rounds to {o.peer_id}, one every {period:.1f} s (median interval between round "
                f"starts; intervals {', '.join(f'{i:.1f}' for i in intervals)} s); each: relayed connection opened, "
                "WebRTC attempt failed, relayed connection closed by this node, dialed again"]
    evidence += [f"{at_line(log, r[0])} opened; {at_line(log, r[1])} closed" for r in rounds]
    b.find(R.reconnect_loop(len(rounds), period, tuple(evidence), False, Confidence.CERTAIN))
    b.step("reconnect", "Dialed the peer again after each failed round", StepStatus.FAILED,
           f"{len(rounds)} rounds, one every {period:.1f} s", rounds[-1][0])
    return {"rounds": len(rounds), "period_s": period, "intervals_s": intervals}


def _headline(outcome: Outcome, findings: list[Finding], peer: str, cut: dict[str, object] | None) -> str:
    fallback = next((f for f in findings if f.code in FALLBACK_ENDS), None)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if outcome is Outcome.UPGRADED:
        return f"The log shows an upgrade to a direct WebRTC connection with {short_peer_id(peer)}."
    if outcome is Outcome.RELAYED_ONLY:
        failed = next((f for f in findings if f.code in WEBRTC and f.severity is Severity.ERROR), None)
        head = f"The log shows {short_peer_id(peer)} reached through the relay; no direct connection"
        head += f" ({failed.title[0].lower()}{failed.title[1:]})." if failed else "."
        return head + (f" {fallback.title}." if fallback and cut else "")
    first = errors[0].title if errors else "no relayed connection was set up in this log"
    return f"The log shows {short_peer_id(peer)} not reached: {first[0].lower()}{first[1:]}."
