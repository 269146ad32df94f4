"""Diagnosis of a chrome://webrtc-internals dump: the same finding codes a live upgrade would give, from
one browser's record of its peer connections.

Pure, like the trace diagnoses: the facts come from evidence/webrtc_internals.py. libp2p opens one
peer connection per upgrade attempt, so each is judged (upgraded, ICE failed, DTLS failed, unfinished)
and the verdict is about the one that mattered: the last that connected, else the last that got the
peer's answer or offer, else the last. A failed attempt before an upgrade is kept as a warning. What a
dump cannot show (the other side, the relayed connection, stats when the page was not sampling) lowers
a finding's confidence, and its settle says what would tell.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.facts import DumpFacts, DumpRead
from p2pdiag.diagnosis.findings import network as N
from p2pdiag.diagnosis.findings import webrtc as W
from p2pdiag.diagnosis.model import Confidence, Finding, Outcome, Severity, Step, StepStatus, Verdict
from p2pdiag.diagnosis.steps import Builder, by_severity, in_time_order
from p2pdiag.errors import TraceFileError
from p2pdiag.evidence.webrtc_internals import Candidate, Dump, Pair, PeerConnection

COMMAND = "analyze"
STATS_SETTLE = ("a dump taken with chrome://webrtc-internals open before the connection starts and kept open "
                "until it ends, so the page samples the candidate pairs (stats)")
OTHER_SIDE_SETTLE = "the other side's record of the same attempt (its js-libp2p log or its own dump)"
MAX_LISTED = 8
GATHERING_S = 2.0  # a browser gathers host candidates within milliseconds: 2 s without one is no usable interface
UNANSWERED_CHECKS = 20  # Chromium sends one every 50-100 ms at first: seconds of checks, not a dump taken early
NO_ANSWER = 701  # icecandidateerror's code when a STUN/TURN server did not answer (W3C webrtc-pc)


@dataclasses.dataclass
class Judged:
    pc: PeerConnection
    result: str  # upgraded, ice-failed, dtls-failed, unfinished
    findings: list[Finding]
    detail: str


def _t(t_s: float | None) -> str:
    return "" if t_s is None else f" at t={t_s:.3f} s"


def _timeline(pc: PeerConnection, kind: str) -> str:
    states = pc.states_of(kind)
    return " → ".join(states) if states else "(none logged)"


def _count(cands: list[Candidate]) -> str:
    kinds = Counter(c.candidate_type for c in cands)
    return f"{len(cands)}" + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else "")


def _pair_text(pc: PeerConnection, p: Pair) -> str:
    local, remote = pc.candidate(p.local_id), pc.candidate(p.remote_id)
    ends = f"{local.endpoint if local else p.local_id} → {remote.endpoint if remote else p.remote_id}"
    return (f"{ends}: {'/'.join(p.states) or '?'}, {p.requests_sent} checks sent, {p.responses_received} answered, "
            f"{p.requests_received} received" + (", nominated" if p.nominated else ""))


def _stun_urls(pc: PeerConnection, scheme: str) -> list[str]:
    return [u for s in pc.ice_servers for u in s.urls if u.lower().startswith(scheme)]


def _judge(pc: PeerConnection) -> Judged:
    ice, conn = pc.states_of("ice"), pc.states_of("connection")
    ice_ok = any(s in ("connected", "completed") for s in ice)
    upgraded = "connected" in conn or (not conn and ice_ok and "failed" not in pc.dtls_states)
    dtls_failed = not upgraded and ("failed" in pc.dtls_states or (ice_ok and "failed" in conn))
    ice_failed = not upgraded and not dtls_failed and ("failed" in ice or "failed" in conn)
    ran = (pc.last_t_s or 0.0) - (pc.first_t_s or 0.0)
    gathered = "complete" in pc.states_of("gathering") or ran >= GATHERING_S
    result = ("upgraded" if upgraded else "dtls-failed" if dtls_failed else "ice-failed" if ice_failed
              else "no-local-candidates" if not pc.local and gathered else "unfinished")
    findings: list[Finding] = []
    where = f"peer connection {pc.key}"

    for e in pc.errors:
        if e.url.lower().startswith("turn"):
            findings.append(N.turn_error_seen(e.url, e.error_code, e.error_text,
                                              [f"{where}: icecandidateerror{_t(e.t_s)}"]))
    srflx = [c for c in pc.local if c.candidate_type == "srflx"]
    by_base: dict[tuple[str | None, int | None], list[Candidate]] = {}
    for c in srflx:
        by_base.setdefault((c.related_address, c.related_port), []).append(c)
    for (base, port), group in by_base.items():
        ports = sorted({c.port for c in group if c.port is not None})
        if base is None or len(ports) < 2:
            continue
        urls = {c.url for c in group if c.url}
        sure = len(urls) >= 2
        f = N.symmetric_seen(["this browser's NAT"], (
            f"{where}: one local socket {base}:{port} mapped to {len(ports)} public ports: "
            + ", ".join(f"{c.address}:{c.port}" + (f" (from {c.url})" if c.url else "") for c in group[:MAX_LISTED]),))
        findings.append(dataclasses.replace(
            f, confidence=Confidence.LIKELY if sure else Confidence.POSSIBLE,
            settle="`p2pdiag nat --stun URL --stun URL` from that network" + (
                "" if sure else "; the dump does not say which STUN server gave which port (no stats)")))

    if dtls_failed:
        when = next((s.t_s for s in pc.states if s.kind == "connection" and s.state == "failed"), None)
        reason = (f"{where}: ICE {_timeline(pc, 'ice')}, connection {_timeline(pc, 'connection')} "
                  f"(failed{_t(when)})")
        stats = f"transport dtlsState {' → '.join(pc.dtls_states)} (stats)" if pc.dtls_states else None
        f = W.dtls_failed(reason, stats)
        findings.append(f if stats else dataclasses.replace(f, confidence=Confidence.LIKELY, settle=STATS_SETTLE))
    elif not upgraded:
        findings += _ice_findings(pc, where, ice_failed)
    detail = (f"ICE {_timeline(pc, 'ice')}; connection {_timeline(pc, 'connection')}"
              + (f"; DTLS {' → '.join(pc.dtls_states)}" if pc.dtls_states else "")
              + f"; candidates local {_count(pc.local)}, remote {_count(pc.remote)}"
              + (f"; {len(pc.pairs)} pair(s)" if pc.pairs else "; no pair sampled"))
    selected = pc.selected
    if selected is not None:
        local, remote = pc.candidate(selected.local_id), pc.candidate(selected.remote_id)
        via = " through the TURN relay" if local and local.candidate_type == "relay" else ""
        detail += f"; selected {local.endpoint if local else '?'} → {remote.endpoint if remote else '?'}{via}"
    if pc.errors:
        detail += "; candidate errors: " + ", ".join(f"{e.url} {e.error_code}" for e in pc.errors[:MAX_LISTED])
    return Judged(pc, result, findings, detail)


def _ice_findings(pc: PeerConnection, where: str, failed: bool) -> list[Finding]:
    """Why no candidate pair worked: no candidates on one side, or checks that were never answered."""
    remote_seen = bool(pc.remote) or pc.remote_sdp_candidates > 0
    sampled = bool(pc.pairs)
    if not pc.local:
        # gathering that ran its course (or seconds of it) without one candidate is more than a dump cut short
        ran = (pc.last_t_s or 0.0) - (pc.first_t_s or 0.0)
        sure = failed or "complete" in pc.states_of("gathering") or ran >= GATHERING_S
        return [dataclasses.replace(W.no_local_candidates_seen(
            (f"{where}: gathering {_timeline(pc, 'gathering')}, no local candidate logged or sampled",
             f"ICE servers: {', '.join(u for s in pc.ice_servers for u in s.urls) or 'none'}; "
             f"policy {pc.ice_transport_policy or 'all'}"), pc.ice_transport_policy == "relay"),
            confidence=Confidence.LIKELY if sure else Confidence.POSSIBLE,
            settle="the browser machine's interfaces (`ip addr`) and a dump of an attempt that ran until ICE "
                   "failed or connected")]
    if not remote_seen:
        f = W.no_remote_candidates([], [], [])
        return [dataclasses.replace(f, evidence=(
            f"{where}: no addIceCandidate, no candidate in the remote description"
            + ("" if sampled else ", none sampled"),
            f"remote description {'set' if pc.remote_description else 'never set'}"),
            confidence=Confidence.LIKELY, settle=OTHER_SIDE_SETTLE)]
    findings = []
    answered = sum(p.responses_received for p in pc.pairs)
    sent = sum(p.requests_sent for p in pc.pairs)
    every_failed = sampled and all(p.state == "failed" for p in pc.pairs)
    evidence = [f"{where}: ICE {_timeline(pc, 'ice')}, connection {_timeline(pc, 'connection')}"]
    evidence += [_pair_text(pc, p) for p in pc.pairs[:MAX_LISTED]]
    if not sampled:
        evidence.append("no candidate pair was sampled (stats), so which checks went out is not known")
    confidence = Confidence.LIKELY if failed and sampled else Confidence.POSSIBLE
    settle = STATS_SETTLE if not sampled else "the same attempt from the other side (its dump or log)"
    if not failed:
        evidence.append("ICE was still checking when the dump was taken")
        settle = ("the dialer's log (a js-libp2p dialer gives up after 6 s, before the browser's ICE fails), "
                  "or `p2pdiag nat` from that network")
    findings.append(W.ice_failed_seen(tuple(evidence), every_failed, confidence, settle, ended=failed))
    stun = _stun_urls(pc, "stun")
    stun_silent = [e for e in pc.errors if e.url.lower().startswith("stun") and e.error_code == NO_ANSWER]
    srflx = [c for c in pc.local if c.candidate_type == "srflx"]
    udp_local = [c for c in pc.local if c.protocol == "udp" and c.candidate_type != "relay"]
    received = sum(p.requests_received for p in pc.pairs)
    # seconds of checks with no answer (or ICE failed after some), and STUN silent too or no UDP candidate
    many = sent >= UNANSWERED_CHECKS or (failed and sent > 0)
    if sampled and many and not answered and (stun_silent or (stun and not srflx) or not udp_local):
        why = [f"{where}: {sent} checks sent over {len(pc.pairs)} pair(s), none answered"
               + ("; none of the peer's checks arrived either" if not received else "")]
        if stun_silent:
            why.append(f"STUN got no answer: {', '.join(sorted({e.url for e in stun_silent}))} (error 701)")
        elif stun and not srflx:
            why.append(f"no server-reflexive candidate from {', '.join(stun)}: STUN got no answer")
        if not udp_local:
            why.append("only TCP or relay candidates on this side: " + ", ".join(c.endpoint for c in pc.local[:4]))
        if not failed:
            why.append("ICE was still checking when the record ends (the dialer gave up first)")
        findings.append(N.udp_blocked_local("this browser's", why, Confidence.LIKELY if failed else Confidence.POSSIBLE,
                                            {"checks_sent": sent, "answered": answered, "received": received}))
    return findings


def _mattered(judged: list[Judged]) -> Judged:
    for wanted in (lambda j: j.result == "upgraded", lambda j: j.pc.remote_description, lambda j: True):
        hits = [j for j in judged if wanted(j)]
        if hits:
            return max(hits, key=lambda j: (j.pc.first_t_s if j.pc.first_t_s is not None else -1.0,
                                            judged.index(j)))
    raise AssertionError("unreachable: judged is not empty")


def dump_read(dump: Dump) -> DumpRead:
    pcs = dump.peer_connections
    lacks = []
    if not any(pc.stats_samples for pc in pcs):
        lacks.append("stats (none sampled: the page was not open while it connected, the connection closed "
                     "first, or it never got a transport): no candidate pairs, selected pair or DTLS state")
    elif not all(pc.stats_samples for pc in pcs):
        lacks.append(f"stats of {sum(1 for pc in pcs if not pc.stats_samples)} peer connection(s)")
    if any(pc.legacy_stats and not pc.pairs for pc in pcs):
        lacks.append("the standard stats (only Chrome's legacy goog* stats, which are not read)")
    if dump.first_time is None:
        lacks.append("timestamps: no timing")
    if not all(pc.config_read for pc in pcs):
        lacks.append("the rtcConfiguration (ICE servers) of some peer connections")
    lacks.append("the other side's view (a dump is one browser's side)")
    lacks.append("the libp2p peers and the relayed connection (a dump names neither)")
    if dump.peer_connections_dropped:
        lacks.append(f"{dump.peer_connections_dropped} peer connections past the first {len(pcs)} (not read)")
    dropped = sum(pc.updates_dropped + pc.candidates_dropped for pc in pcs)
    if dropped:
        lacks.append(f"{dropped} updates or candidates past the caps (not kept)")
    return DumpRead("chrome://webrtc-internals dump", dump.compressed, dump.file_bytes, dump.json_bytes, dump.browser,
                    len(pcs), sum(len(pc.candidates) for pc in pcs), sum(len(pc.pairs) for pc in pcs),
                    dump.first_time, dump.span_s, tuple(lacks))


def _facts(j: Judged) -> dict[str, object]:
    pc = j.pc
    sel = pc.selected
    local = pc.candidate(sel.local_id) if sel else None
    remote = pc.candidate(sel.remote_id) if sel else None
    return {
        "key": pc.key, "result": j.result, "initiator": pc.offer_sent,
        "ice_states": pc.states_of("ice"), "connection_states": pc.states_of("connection"),
        "gathering_states": pc.states_of("gathering"), "dtls_states": list(pc.dtls_states),
        "ice_servers": [u for s in pc.ice_servers for u in s.urls], "ice_transport_policy": pc.ice_transport_policy,
        "local_candidates": [{"type": c.candidate_type, "address": c.address, "port": c.port, "protocol": c.protocol,
                              "related_port": c.related_port, "url": c.url} for c in pc.local],
        "remote_candidates": [{"type": c.candidate_type, "address": c.address, "port": c.port,
                               "protocol": c.protocol} for c in pc.remote],
        "pairs": [{"local": p.local_id, "remote": p.remote_id, "state": p.state, "states": list(p.states),
                   "requests_sent": p.requests_sent, "responses_received": p.responses_received,
                   "requests_received": p.requests_received, "responses_sent": p.responses_sent,
                   "nominated": p.nominated, "selected": p.stat_id == pc.selected_pair_id} for p in pc.pairs],
        "selected": None if sel is None else {
            "local_type": local.candidate_type if local else None,
            "remote_type": remote.candidate_type if remote else None,
            "local": local.endpoint if local else None, "remote": remote.endpoint if remote else None,
            "relayed_by_turn": bool(local and local.candidate_type == "relay")},
        "candidate_errors": [{"url": e.url, "error_code": e.error_code, "error_text": e.error_text} for e in pc.errors],
        "stats_samples": pc.stats_samples,
    }


def diagnose_dump(dump: Dump) -> Verdict:
    if not dump.peer_connections:
        raise TraceFileError(f"{dump.name}: the dump holds no peer connection: open chrome://webrtc-internals "
                             "before the connection is attempted, then take the dump")
    read = dump_read(dump)
    b = Builder()
    span = f", {read.span_s:.3f} s from {read.first_time}" if read.span_s is not None else ""
    b.steps.append(Step("dump.read", f"Read a chrome://webrtc-internals dump ({read.browser or 'browser unknown'})",
                        StepStatus.INFO, f"{read.peer_connections} peer connection(s), {read.candidates} candidates, "
                        f"{read.pairs} candidate pairs{span}; lacks: " + "; ".join(read.lacks), 0.0))
    judged = [_judge(pc) for pc in dump.peer_connections]
    mattered = _mattered(judged)
    for j in judged:
        status = {"upgraded": StepStatus.OK, "unfinished": StepStatus.WARNING}.get(j.result, StepStatus.FAILED)
        role = "offered (initiator)" if j.pc.offer_sent else "answered (responder)"
        note = " — the one that mattered" if j is mattered else ""
        b.steps.append(Step(f"pc.{j.pc.key}", f"Peer connection {j.pc.key}, {role}: {j.result}{note}", status,
                            j.detail, j.pc.first_t_s))
    for j in [mattered, *(j for j in judged if j is not mattered)]:
        for f in j.findings:
            if j is not mattered and f.severity is Severity.ERROR and f.code is not Code.TURN_ALLOCATION_FAILED:
                # an earlier or parallel attempt that failed: worth knowing, not the verdict
                f = dataclasses.replace(f, severity=Severity.WARNING, evidence=(
                    f"another attempt than the one that mattered ({mattered.pc.key}: {mattered.result})",
                    *f.evidence))
            b.find(f)
    outcome = Outcome.UPGRADED if mattered.result == "upgraded" else Outcome.RELAYED_ONLY
    headline = _headline(mattered, b.findings, len(judged))
    details = DumpFacts(read, mattered.pc.key, tuple(_facts(j) for j in judged))
    return Verdict(COMMAND, outcome, headline, tuple(in_time_order(b.steps)), tuple(by_severity(b.findings)), details)


def _headline(mattered: Judged, findings: list[Finding], n: int) -> str:
    attempts = f" (peer connection {mattered.pc.key} of {n})" if n > 1 else ""
    if mattered.result == "upgraded":
        sel = mattered.pc.selected
        local = mattered.pc.candidate(sel.local_id) if sel else None
        via = " through a TURN relay" if local and local.candidate_type == "relay" else " directly"
        return f"The dump shows the WebRTC connection up{via if sel else ''}{attempts}."
    errors = [f for f in findings if f.severity is Severity.ERROR]
    why = f": {_lower_first(errors[0].title)}" if errors else ""
    return f"The dump shows no direct WebRTC connection{attempts}{why}."


def _lower_first(title: str) -> str:
    """"The TURN allocation failed" -> "the TURN allocation failed"; "ICE failed" stays as it is."""
    return title if title[1:2].isupper() else title[:1].lower() + title[1:]
