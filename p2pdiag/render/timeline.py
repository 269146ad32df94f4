"""What the report's timeline picture shows, read from one input's evidence: lanes of spans and marks.

Pure, like a renderer: it reads a trace's events (or a js-libp2p log's facts) and the verdict's typed
facts, and judges nothing the diagnosis has not: a cut is drawn as a cut only where the trace says the
relay ended the circuit (or the verdict says the relay cut it), and a limit is read as diagnosis reads
it (`diagnosis/limits.py`). `render/html.py` draws the lanes as inline SVG.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2pdiag.diagnosis.facts import DialFacts, ListenFacts, LogFacts
from p2pdiag.diagnosis.limits import fmt_bytes, fmt_seconds, read_duration

if TYPE_CHECKING:
    from p2pdiag.diagnosis.facts import LimitCut
    from p2pdiag.diagnosis.model import Verdict
    from p2pdiag.evidence.jslog import JsLog
    from p2pdiag.trace.file import Trace

MAX_PAIRS = 8  # ICE pair lanes drawn per upgrade attempt; the rest are counted
MAX_CONNECTIONS = 24  # relayed connections (and upgrade attempts) drawn per input; the rest are counted
MAX_MARKS = 12  # state marks drawn per lane; the rest are counted in the lane's note


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time in a lane. KIND picks its colour: relayed, limit, upgrade-ok, upgrade-failed,
    webrtc, round-failed, round-ok, or pair-<ICE pair state>."""

    start_s: float
    end_s: float | None  # None: still open where the evidence ends
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment in a lane. KIND: cut (the relay ended it), closed, failed, ok, state."""

    t_s: float
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Lane:
    group: str  # "Relayed connection", "Relay limits", "WebRTC upgrade", "ICE pairs of webrtc-1", "Reconnect loop"
    label: str
    spans: tuple[Span, ...] = ()
    marks: tuple[Mark, ...] = ()
    # bytes through the relayed connection over time, as a fraction of the lane's scale (0..1)
    series: tuple[tuple[float, float], ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    end_s: float  # the last time the evidence has, on its own clock (seconds since its start)
    lanes: tuple[Lane, ...]
    origin: datetime.datetime | None  # the wall-clock time of t=0, when the evidence has one
    origin_source: str  # where ORIGIN was read, or why there is none
    has_times: bool = True  # False: the evidence has no times at all, nothing can be placed
    notes: tuple[str, ...] = field(default=())


def wall_clock(text: str | None) -> datetime.datetime | None:
    """An ISO 8601 time with its zone, as an aware datetime; None when absent, unreadable or without a zone."""
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


# --- a p2pdiag trace ---------------------------------------------------------------------------------


def from_trace(trace: Trace, verdict: Verdict) -> Timeline:
    from p2pdiag.trace import events as E

    events = trace.events
    end_s = max((e.t_s for e in events), default=0.0)
    lanes: list[Lane] = []
    relay_agent = next((e.agent_version for e in events
                        if isinstance(e, E.IdentifyCompleted) and e.subject is E.Subject.RELAY), None)
    cut = verdict.details.fallback.cut if isinstance(verdict.details, DialFacts) else None
    # on listen, the reconnect diagnosis tells which rounds the relay cut
    loops = verdict.details.reconnect_loops if isinstance(verdict.details, ListenFacts) else ()
    cut_rounds = {r.connection_id for loop in loops for r in loop.rounds if r.end.value == "relay-cut"}
    by_conn: dict[str, list[E.Event]] = {}  # one pass: a run with many connections stays linear
    for e in events:
        if isinstance(e, E.ConnectionEvent):
            by_conn.setdefault(e.connection_id, []).append(e)
    secured_all = [e for e in events if isinstance(e, E.CircuitSecured)]
    for secured in secured_all[:MAX_CONNECTIONS]:
        cid = secured.connection_id
        lanes += _relayed_lanes(events, by_conn[cid], secured, relay_agent, cut, cid in cut_rounds)
    if len(secured_all) > MAX_CONNECTIONS:
        lanes.append(Lane("Relayed connection", f"{len(secured_all) - MAX_CONNECTIONS} more not drawn"))
    lanes += _upgrade_lanes(events, by_conn)
    if isinstance(verdict.details, ListenFacts):
        lanes += _loop_lanes(verdict.details)
    origin = wall_clock(trace.header.started_at)
    source = (f"the trace header's started_at ({trace.header.started_at})" if origin is not None
              else "the trace header has no readable started_at")
    return Timeline(end_s=end_s, lanes=tuple(lanes), origin=origin, origin_source=source)


def _relayed_lanes(events: tuple, mine: list, secured: object, relay_agent: str | None, cut: LimitCut | None,
                   round_cut: bool) -> list[Lane]:
    """The relayed connection's life, and its limits: the time limit as a bar, the bytes against the data limit.
    Its end is drawn as the relay's cut where the trace says the relay ended it or the verdict judged
    it cut (CUT, the dial's LimitCut; ROUND_CUT, a reconnect round the relay ended)."""
    from p2pdiag.trace import events as E

    assert isinstance(secured, E.CircuitSecured)
    cid = secured.connection_id
    start = max(secured.t_s - secured.duration_s, 0.0)
    closed = next((e for e in mine if isinstance(e, E.CircuitClosed)), None)
    marks: list[Mark] = []
    if closed is not None:
        byte_count = (f"{fmt_bytes(closed.bytes_sent + closed.bytes_received)} both ways, "
                      f"after {_secs(closed.age_s)}")
        if cut is not None and cut.connection_id == cid:
            marks.append(Mark(closed.t_s, "cut", f"relay cut it at its {cut.cause} limit: {cut.detail}"))
        elif closed.closer is E.Closer.RELAY or round_cut:
            marks.append(Mark(closed.t_s, "cut", f"relay cut it: {closed.reason} ({byte_count})"))
        else:
            marks.append(Mark(closed.t_s, "closed", f"{_closed(closed.closer.value, closed.reason)} ({byte_count})"))
    direction = "from" if secured.inbound else "to"
    lane = Lane("Relayed connection", f"{cid} {direction} {_short_peer(secured.remote_peer_id)}",
                (Span(start, closed.t_s if closed else None, "relayed", f"relayed connection {cid}"),), tuple(marks))
    lanes = [lane]
    # the Limit the relay announced for this circuit: HOP STATUS on the dialer, STOP CONNECT on the listener
    stop = next((e for e in mine if isinstance(e, E.StopConnectReceived)), None)
    hop = next((e for e in reversed(events) if isinstance(e, E.HopStatusReceived) and e.t_s <= secured.t_s
                and e.relay == secured.relay), None)
    announced = stop or hop
    duration = getattr(announced, "announced_duration_s", None)
    data = getattr(announced, "announced_data_bytes", None)
    reading = read_duration(duration, relay_agent)
    if reading.effective_s is not None:
        label = f"time limit {fmt_seconds(reading.effective_s)}"
        lane_label = f"{cid}: {label}" + (" (sent in ms)" if reading.suspect_unit else "")
        if reading.suspect_unit:
            label += f" (announced {duration}: {reading.reason})"
        lanes.append(Lane("Relay limits", lane_label, (Span(start, start + reading.effective_s, "limit", label),)))
    traffic = [(e.t_s, e.bytes_sent + e.bytes_received) for e in mine if isinstance(e, E.CircuitTraffic)]
    if closed is not None:
        traffic.append((closed.t_s, closed.bytes_sent + closed.bytes_received))
    if data or traffic:
        lanes.append(_bytes_lane(cid, start, traffic, data, "both ways"))
    return lanes


def _bytes_lane(cid: str, start: float, traffic: list[tuple[float, int]], data_limit: int | None,
                counted: str) -> Lane:
    peak = max((n for _, n in traffic), default=0)
    scale = max(data_limit or 0, peak, 1)
    series = ((start, 0.0), *((t, n / scale) for t, n in traffic))
    label = f"{cid}: bytes {counted}" + (f" vs data limit {fmt_bytes(data_limit)}" if data_limit else "")
    if data_limit:
        note = f"data limit {fmt_bytes(data_limit)} = top of the lane; {fmt_bytes(peak)} counted {counted}"
    else:
        note = f"no data limit announced; {fmt_bytes(peak)} counted {counted}"
    return Lane("Relay limits", label, series=series, note=note)


def _upgrade_lanes(events: tuple, by_conn: dict[str, list]) -> list[Lane]:
    from p2pdiag.trace import events as E

    lanes: list[Lane] = []
    attempts = [e for e in events if isinstance(e, E.WebRTCUpgradeStarted)]
    for started in attempts[:MAX_CONNECTIONS]:
        wid = started.connection_id
        mine = [e for e in by_conn[wid] if isinstance(e, E.WebRTCEvent)]
        ok = next((e for e in mine if isinstance(e, E.WebRTCUpgradeSucceeded)), None)
        failed = next((e for e in mine if isinstance(e, E.WebRTCUpgradeFailed)), None)
        spans = []
        marks = [Mark(e.t_s, "state", f"ICE {e.state.value}") for e in mine
                 if isinstance(e, E.IceConnectionStateChanged)]
        marks += [Mark(e.t_s, "failed" if e.state.value == "failed" else "state", f"DTLS {e.state.value}")
                  for e in mine if isinstance(e, E.DtlsStateChanged)]
        if ok is not None:
            spans.append(Span(started.t_s, ok.t_s, "upgrade-ok", f"upgrade {wid} succeeded in {_secs(ok.duration_s)}"))
            closed = next((e for e in mine if isinstance(e, E.WebRTCConnectionClosed)), None)
            spans.append(Span(ok.t_s, closed.t_s if closed else None, "webrtc", f"WebRTC connection {wid}"))
            marks.append(Mark(ok.t_s, "ok", "upgraded: direct connection"))
            if closed is not None:
                marks.append(Mark(closed.t_s, "closed", _closed(closed.closer.value, closed.reason)))
        elif failed is not None:
            spans.append(Span(started.t_s, failed.t_s, "upgrade-failed",
                              f"upgrade {wid} failed at {failed.step.value} after {_secs(failed.duration_s)}"))
            marks.append(Mark(failed.t_s, "failed", f"failed at {failed.step.value}: {failed.reason}"))
        else:
            spans.append(Span(started.t_s, None, "upgrade-failed", f"upgrade {wid}: no outcome in the evidence"))
        marks.sort(key=lambda m: m.t_s)
        label = f"{wid} ({started.role.value}) over {started.relayed_connection_id}"
        lanes.append(_capped(Lane("WebRTC upgrade", label, tuple(spans), tuple(marks))))
        lanes += _pair_lanes(mine, wid)
    if len(attempts) > MAX_CONNECTIONS:
        lanes.append(Lane("WebRTC upgrade", f"{len(attempts) - MAX_CONNECTIONS} more attempts not drawn"))
    return lanes


def _pair_lanes(mine: list, wid: str) -> list[Lane]:
    from p2pdiag.trace import events as E

    pairs: dict[tuple, list] = {}
    for e in mine:
        if isinstance(e, E.CandidatePairEvent):
            # by address, not type: aioice may report a pair's remote as prflx while checking and as
            # host once selected; it is one pair, one lane
            pairs.setdefault((e.local_address, e.local_port, e.remote_address, e.remote_port, e.protocol), []).append(e)
    lanes = []
    for key, seen in list(pairs.items())[:MAX_PAIRS]:
        la, lp, ra, rp, proto = key
        lt, rt = seen[0].local_type.value, seen[0].remote_type.value
        spans, marks = [], []
        changes = [e for e in seen if isinstance(e, E.CandidatePairStateChanged)]
        final = next((e for e in seen if isinstance(e, E.CandidatePairFinal)), None)
        for n, change in enumerate(changes):
            until = changes[n + 1].t_s if n + 1 < len(changes) else (final.t_s if final else None)
            state = change.to_state.value
            nominated = " (nominated)" if change.nominated else ""
            spans.append(Span(change.t_s, until, f"pair-{state}", f"{state}{nominated}"))
        if final is not None:  # its colour already says it; a tick, not a numbered event
            nominated = ", nominated" if final.nominated else ""
            marks.append(Mark(final.t_s, "state", f"at the end: {final.state.value}{nominated}"))
        selected = next((e for e in seen if isinstance(e, E.CandidatePairSelected)), None)
        if selected is not None:
            marks.append(Mark(selected.t_s, "ok", "selected"))
        label = f"{lt} {la}:{lp} → {rt} {ra}:{rp}{'' if proto == 'udp' else ' ' + proto}"
        if not changes and final is not None:
            label += f": {final.state.value} at the end"
        lanes.append(Lane(f"ICE pairs of {wid}", label, tuple(spans), tuple(sorted(marks, key=lambda m: m.t_s))))
    if len(pairs) > MAX_PAIRS:
        lanes.append(Lane(f"ICE pairs of {wid}", f"{len(pairs) - MAX_PAIRS} more pairs not drawn"))
    return lanes


def _loop_lanes(facts: ListenFacts) -> list[Lane]:
    lanes = []
    for loop in facts.reconnect_loops:
        spans = tuple(Span(r.started_s, r.closed_s, "round-ok" if r.end.value == "upgraded" else "round-failed",
                           f"round {n}: {r.connection_id}, upgrade {r.upgrade}, ended by {r.end.value}")
                      for n, r in enumerate(loop.rounds, start=1))
        lanes.append(Lane("Reconnect loop", f"{_short_peer(loop.peer_id)}: {len(loop.rounds)} rounds, "
                                            f"every {_secs(loop.period_s)}", spans))
    return lanes


# --- a js-libp2p debug log ---------------------------------------------------------------------------


def from_log(log: JsLog, verdict: Verdict) -> Timeline:
    from p2pdiag.evidence import events as L

    facts = [f for f in log.facts if f.t_s is not None]
    if not log.has_times or not facts:
        return Timeline(end_s=0.0, lanes=(), origin=None, has_times=False,
                        origin_source="the log has no times of day (coloured +Nms layout, or none at all)")
    end_s = log.span_s if log.span_s is not None else max(f.t_s or 0.0 for f in facts)
    cut = verdict.details.relay_cut if isinstance(verdict.details, LogFacts) else None
    lanes: list[Lane] = []
    opened_all = [f for f in facts if isinstance(f, L.RelayedConnectionOpened)]
    for opened in opened_all[:MAX_CONNECTIONS]:
        conn = opened.connection
        aborted = next((f for f in facts if isinstance(f, L.RelayedConnectionAborted) and f.connection == conn), None)
        closing = next((f for f in facts if isinstance(f, L.ConnectionClosing) and f.connection == conn), None)
        ends = [f for f in (aborted, closing) if f is not None]
        end = min(ends, key=lambda f: f.t_s or 0.0) if ends else None
        marks = []
        if closing is not None and end is closing:
            marks.append(Mark(closing.t_s or 0.0, "closed", f"this node closed it (log line {closing.line})"))
        elif aborted is not None:
            is_cut = cut is not None and cut.get("connection") == conn
            said = f"relay cut it at its {cut.get('cause')} limit" if is_cut and cut is not None else "aborted"
            marks.append(Mark(aborted.t_s or 0.0, "cut" if is_cut else "closed",
                              f"{said}: {aborted.error} (log line {aborted.line})"))
        start = opened.t_s or 0.0
        lanes.append(Lane("Relayed connection", f"{conn} to {_short_peer(opened.peer_id)}",
                          (Span(start, end.t_s if end else None, "relayed", f"relayed connection {conn}"),),
                          tuple(marks)))
        limit_s = cut.get("duration_limit_s") if cut is not None and cut.get("connection") == conn else None
        if limit_s is None:
            limit_s = read_duration(opened.duration_limit, None).effective_s
        if isinstance(limit_s, int | float):
            lanes.append(Lane("Relay limits", f"{conn}: time limit {fmt_seconds(float(limit_s))}",
                              (Span(start, start + float(limit_s), "limit",
                                    f"time limit {fmt_seconds(float(limit_s))} (announced {opened.duration_limit})"),)))
        written = log.circuit_bytes_written.get(conn)
        if opened.data_limit_bytes or written:
            traffic = [(end.t_s or 0.0, written)] if written and end is not None else []
            lane = _bytes_lane(conn, start, traffic, opened.data_limit_bytes, "written by this node")
            if not written:
                lane = Lane(lane.group, lane.label, note=f"data limit {fmt_bytes(opened.data_limit_bytes or 0)}; "
                            "the log counts no bytes (no trace level)")
            lanes.append(lane)
    if len(opened_all) > MAX_CONNECTIONS:
        lanes.append(Lane("Relayed connection", f"{len(opened_all) - MAX_CONNECTIONS} more not drawn"))
    lanes += _log_upgrade_lanes(facts, verdict)
    origin = wall_clock(log.first_time)
    return Timeline(end_s=end_s, lanes=tuple(lanes), origin=origin,
                    origin_source=f"the log's first time of day ({log.first_time})" if origin
                    else "the log's times have no time zone")


def _log_upgrade_lanes(facts: list, verdict: Verdict) -> list[Lane]:
    """The WebRTC attempt as the verdict judged it: a connection js-libp2p logged as upgraded counts only
    when the verdict counts it (a listener's answer after the dialer gave up, a 2.x connection that
    carried no stream, are drawn as failed)."""
    from p2pdiag.diagnosis.facts import ListenerLogFacts
    from p2pdiag.evidence import events as L

    steps = [f for f in facts if isinstance(f, L.WebRTCStep | L.WebRTCUpgraded | L.WebRTCFailed)]
    if not steps:
        return []
    listener = isinstance(verdict.details, ListenerLogFacts)
    counted = set(verdict.details.webrtc_connections) if listener else (
        {verdict.details.webrtc_connection} if isinstance(verdict.details, LogFacts) else set())
    start = steps[0].t_s or 0.0
    upgraded = [f for f in steps if isinstance(f, L.WebRTCUpgraded)]
    ok = next((f for f in upgraded if f.connection in counted), None)
    uncounted = next((f for f in upgraded if f.connection not in counted), None)
    failed = next((f for f in steps if isinstance(f, L.WebRTCFailed)), None)
    marks = [Mark(f.t_s or 0.0, "state", f.step) for f in steps if isinstance(f, L.WebRTCStep)]
    if ok is not None:
        spans = (Span(start, ok.t_s, "upgrade-ok", "WebRTC upgrade succeeded"),
                 Span(ok.t_s or 0.0, None, "webrtc", f"WebRTC connection {ok.connection}"))
        marks.append(Mark(ok.t_s or 0.0, "ok", f"upgraded (log line {ok.line})"))
    elif failed is not None:
        spans = (Span(start, failed.t_s, "upgrade-failed", "WebRTC upgrade failed"),)
        marks.append(Mark(failed.t_s or 0.0, "failed", f"{failed.what} (log line {failed.line})"))
    elif uncounted is not None:
        spans = (Span(start, uncounted.t_s, "upgrade-failed", "WebRTC upgrade not counted"),)
        marks.append(Mark(uncounted.t_s or 0.0, "failed",
                          f"js-libp2p logged it upgraded (log line {uncounted.line}), but it carried no stream "
                          "(see the findings): not counted"))
    else:
        spans = (Span(start, None, "upgrade-failed", "WebRTC upgrade: no outcome in the log"),)
    title = "this node's WebRTC answer" if listener else "the dialer's WebRTC attempt"
    return [_capped(Lane("WebRTC upgrade", title, spans, tuple(sorted(marks, key=lambda m: m.t_s))))]


# --- shared --------------------------------------------------------------------------------------------


def _capped(lane: Lane) -> Lane:
    """At most MAX_MARKS state marks; outcome marks (ok, failed, cut, closed) are always kept."""
    states = [m for m in lane.marks if m.kind == "state"]
    if len(states) <= MAX_MARKS:
        return lane
    keep = set(map(id, states[:MAX_MARKS]))
    marks = tuple(m for m in lane.marks if m.kind != "state" or id(m) in keep)
    return Lane(lane.group, lane.label, lane.spans, marks, lane.series,
                f"{lane.note + '; ' if lane.note else ''}{len(states) - MAX_MARKS} more state changes not drawn")


def _closed(closer: str, reason: str) -> str:
    who = {"local": "p2pdiag", "remote": "the peer", "relay": "the relay"}.get(closer, "an unknown side")
    return reason if reason.startswith("closed by") else f"closed by {who}: {reason}"


def _secs(s: float) -> str:
    return fmt_seconds(round(s, 3))


def _short_peer(peer_id: str) -> str:
    return peer_id if len(peer_id) <= 16 else f"{peer_id[:8]}…{peer_id[-6:]}"


def groups(lanes: Iterable[Lane]) -> list[str]:
    """The lane groups in the order they first appear."""
    return list(dict.fromkeys(lane.group for lane in lanes))


# --- several inputs on one picture ---------------------------------------------------------------------

ALIGN_GAP_S = 600.0  # inputs further apart than this in wall-clock time are not put on one axis


def _wall(t: Timeline, s: float) -> datetime.datetime:
    assert t.origin is not None
    return t.origin + datetime.timedelta(seconds=s)


@dataclass(frozen=True, slots=True)
class Placed:
    """One input on an axis: its seconds are drawn shifted by OFFSET_S; HOW says how it was placed."""

    index: int  # the input's position on the command line, from 0
    offset_s: float
    how: str


@dataclass(frozen=True, slots=True)
class Axis:
    placed: tuple[Placed, ...]
    origin: datetime.datetime | None  # the wall-clock time of the axis' 0, when aligned by wall clock

    def end_s(self, timelines: list[Timeline]) -> float:
        return max((p.offset_s + timelines[p.index].end_s for p in self.placed), default=0.0)


def align(timelines: list[Timeline], placements: Sequence[tuple[float | None, str]] | None = None) -> list[Axis]:
    """The axes to draw, in the order of their first input. Each input's start is its offset in
    PLACEMENTS (where `analyze` put it: wall clock, corrected by the connection seen from both sides),
    or, without them, its wall-clock origin. Inputs whose times overlap, or come within ALIGN_GAP_S of
    each other, share an axis (at least two of them); every other input gets an axis of its own, and
    HOW says why."""
    starts: dict[int, float] = {}
    hows: dict[int, str] = {}
    if placements is not None:
        for n, (offset, how) in enumerate(placements):
            if offset is not None and timelines[n].has_times:
                starts[n], hows[n] = offset, f"aligned by {how}"
    else:
        origins = [t.origin for t in timelines if t.has_times and t.origin is not None]
        for n, t in enumerate(timelines):
            if t.has_times and t.origin is not None:
                starts[n] = (t.origin - min(origins)).total_seconds()  # type: ignore[type-var]
                hows[n] = f"aligned by wall clock: {t.origin_source}"
    together: list[list[int]] = []
    for n in sorted(starts, key=lambda m: starts[m]) if len(timelines) > 1 else ():
        if together:
            last = together[-1]
            reach = max(starts[m] + timelines[m].end_s for m in last)
            if starts[n] - reach <= ALIGN_GAP_S:
                last.append(n)
                continue
        together.append([n])
    shared = {n for group in together if len(group) > 1 for n in group}
    axes: list[Axis] = []
    for group in (g for g in together if len(g) > 1):
        zero = starts[group[0]]
        first = timelines[group[0]].origin
        placed = []
        for n in sorted(group):
            offset = starts[n] - zero
            placed.append(Placed(n, offset, f"{hows[n]}, so it starts at +{offset:.3f} s on the shared axis"))
        axes.append(Axis(tuple(placed), first))
    for n, t in enumerate(timelines):
        if n in shared:
            continue
        if not t.has_times:
            how = f"not drawn: {t.origin_source}, so nothing can be placed in time"
        elif len(timelines) == 1:
            how = f"its own clock: seconds since it began ({t.origin_source})"
        elif n not in starts:
            how = f"not aligned with the others ({t.origin_source}): drawn on its own axis, seconds since it began"
        else:
            how = (f"not aligned with the others: {hows[n]}, it is more than {fmt_seconds(ALIGN_GAP_S)} away "
                   "from every other input, so it is drawn on its own axis, seconds since it began")
        axes.append(Axis((Placed(n, 0.0, how),), t.origin))
    axes.sort(key=lambda a: a.placed[0].index)
    return axes
