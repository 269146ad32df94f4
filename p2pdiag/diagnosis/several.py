"""Several inputs, one verdict on one timeline: the dialer's log beside the listener's, a p2pdiag
`listen` trace beside a customer's js-libp2p log.

Each input is judged on its own first (its own verdict, as `analyze FILE` gives it). Then its clock
is placed on a common timeline, whose zero is the earliest input's start:

- by the wall clock, when the input has one (a trace's `started_at`, a js log's ISO times);
- checked, and corrected, by the relayed connection seen from both sides: the dialer's side says when
  its relayed connection to the listener opened, the listener's when the one from the dialer came in.
  The two moments are a few milliseconds apart on one clock, so a larger difference is the clocks'
  disagreement: the second input is moved by it, and the verdict says so. An input with no wall
  clock (a js log in colours) is placed by that connection alone, or not at all.

The verdict's steps are every input's steps, named by input and in timeline order; its findings are
every input's, once each; its outcome and exit code are the dialing side's (the connection's
verdict), or the first input's when no input dialed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from p2pdiag.diagnosis.facts import DumpFacts, LogFacts, Placement, SeveralFacts, TraceNotes
from p2pdiag.diagnosis.model import Outcome, StepStatus, Verdict
from p2pdiag.diagnosis.steps import Builder, by_severity, in_time_order, short_peer_id
from p2pdiag.evidence.events import AddressDialed, RelayedConnectionOpened, ReservationCreated, SelfAddressObserved
from p2pdiag.evidence.jslog import JsLog
from p2pdiag.evidence.webrtc_internals import Dump
from p2pdiag.trace.events import HopStatusReceived, StopConnectReceived, TargetResolved
from p2pdiag.trace.file import Trace

# the events of a trace `from_trace` reads (a streamed watch trace keeps these for it)
TRACE_READS = (TargetResolved, HopStatusReceived, StopConnectReceived)
CLOCKS_AGREE_S = 1.0  # one clock: the two sides' moments are milliseconds apart; beyond this they disagree


@dataclass(frozen=True, slots=True)
class RelayedSide:
    """One side's record of a relayed connection: who it went to (or came from), through which relay."""

    outbound: bool
    remote: str  # the peer at the other end
    relay: str | None  # the relay's peer id, when the input names it
    t_s: float | None  # on the input's own clock, from its start


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    kind: str  # "p2pdiag trace", "js-libp2p debug log" or "chrome://webrtc-internals dump"
    verdict: Verdict
    started: datetime | None  # the wall-clock time of the input's t=0
    self_peer_id: str | None  # this input's own peer id, when it says it
    relayed: tuple[RelayedSide, ...]
    dialer: bool  # the input is of the side that dialed
    evidence: Trace | JsLog | Dump | None = None  # what the verdict was read from (the report draws it)


def _pair(a: Source, b: Source) -> tuple[RelayedSide, RelayedSide, str] | None:
    """The relayed connection A dialed and B received (or the other way round), and how sure the match is."""
    for x, y in ((a, b), (b, a)):
        outs = [r for r in x.relayed if r.outbound and r.t_s is not None]
        ins = [r for r in y.relayed if not r.outbound and r.t_s is not None]
        matches = [(o, i) for o in outs for i in ins
                   if (y.self_peer_id is None or o.remote == y.self_peer_id)
                   and (x.self_peer_id is None or i.remote == x.self_peer_id)
                   and (o.relay is None or i.relay is None or o.relay == i.relay)]
        if len(matches) == 1 or (matches and y.self_peer_id and x.self_peer_id):
            o, i = matches[0]
            sure = "both peer ids" if y.self_peer_id and x.self_peer_id else "the one relayed connection each side has"
            if (y.self_peer_id is None or x.self_peer_id is None) and (len(outs) > 1 or len(ins) > 1):
                continue
            return (o, i, sure) if x is a else (i, o, sure)
    return None


def place(sources: list[Source]) -> list[Placement]:
    """Each source's offset on the common timeline, and how it was found."""
    clocked = [s.started for s in sources if s.started is not None]
    zero = min(clocked) if clocked else None
    offsets: dict[str, float | None] = {}
    hows: dict[str, str] = {}
    for s in sources:
        if s.started is not None and zero is not None:
            offsets[s.name] = (s.started - zero).total_seconds()
            hows[s.name] = "wall clock"
        else:
            offsets[s.name] = None
            hows[s.name] = "not placed: no wall-clock time in it, and no connection seen from both sides"
    anchor = sources[0]
    if offsets[anchor.name] is None:
        offsets[anchor.name] = 0.0
        hows[anchor.name] = "its own clock (the timeline's zero)"
    for s in sources[1:]:
        for other in sources:
            if other is s or offsets[other.name] is None:
                continue
            pair = _pair(other, s)
            if pair is None:
                continue
            mine, theirs, sure = pair[1], pair[0], pair[2]
            assert mine.t_s is not None and theirs.t_s is not None
            expected = offsets[other.name] + theirs.t_s - mine.t_s  # s's offset if both moments were one
            what = f"the relayed connection {short_peer_id(pair[0].remote if pair[0].outbound else pair[1].remote)}"
            seen = f"{what} seen from both sides (matched by {sure})"
            if offsets[s.name] is None:
                offsets[s.name] = expected
                hows[s.name] = f"{seen}: placed by it (no wall clock)"
            else:
                skew = offsets[s.name] - expected
                if abs(skew) <= CLOCKS_AGREE_S:
                    hows[s.name] = f"wall clock, checked by {seen}: the clocks agree within {abs(skew):.3f} s"
                else:
                    hows[s.name] = (f"{seen}: its clock is {abs(skew):.3f} s {'ahead' if skew > 0 else 'behind'}; "
                                    "moved by that")
                    offsets[s.name] = expected
            break
    placed = [o for o in offsets.values() if o is not None]
    low = min(placed) if placed else 0.0  # a clock moved back may start before the earliest: zero is the first
    return [Placement(s.name, None if offsets[s.name] is None else offsets[s.name] - low, hows[s.name])
            for s in sources]


def combine(sources: list[Source]) -> Verdict:
    """One verdict of several inputs, each judged on its own, on one timeline."""
    placements = place(sources)
    by_name = {p.name: p for p in placements}
    primary = next((s for s in sources if s.dialer), sources[0])
    watches = [s for s in sources if s.verdict.command == "watch"]
    if not any(s.dialer for s in sources) and watches:
        # watch histories (shards of one fleet, or one fleet's days): the one with a fault still open
        primary = next((s for s in watches if s.verdict.outcome is Outcome.FLEET_PROBLEM), watches[0])
    b = Builder()
    for n, s in enumerate(sources, start=1):
        p = by_name[s.name]
        b.step(f"input{n}", f"Input {n}: {s.name}", StepStatus.INFO,
               f"{s.kind}; {s.verdict.outcome.value} (exit {int(s.verdict.exit_code)}); on the timeline: {p.how}"
               + (f", offset {p.offset_s:+.3f} s" if p.offset_s is not None else ""))
        b.steps[-1] = dataclasses.replace(b.steps[-1], t_s=None if p.offset_s is None else round(p.offset_s, 6))
        for step in s.verdict.steps:
            t = round(step.t_s + p.offset_s, 6) if step.t_s is not None and p.offset_s is not None else None
            b.steps.append(dataclasses.replace(step, key=f"input{n}.{step.key}", title=f"[{n}] {step.title}", t_s=t))
    seen: set[tuple[str, str]] = set()
    for s in sources:
        for f in s.verdict.findings:
            if (f.code, f.title) not in seen:
                seen.add((f.code, f.title))
                b.find(f)
    unplaced = [p.name for p in placements if p.offset_s is None]
    headline = (f"{primary.verdict.headline} ({len(sources)} inputs on one timeline"
                + (f"; not placed on it: {', '.join(unplaced)}" if unplaced else "") + ")")
    inputs = tuple({"name": s.name, "kind": s.kind, "outcome": s.verdict.outcome.value, "facts": s.verdict.facts}
                   for s in sources)
    outcome: Outcome = primary.verdict.outcome
    notes = [s.verdict.notes for s in sources if s.verdict.notes is not None]
    merged = TraceNotes(truncated=any(n.truncated for n in notes), unknown_events=sum(n.unknown_events for n in notes),
                        redacted=any(n.redacted for n in notes)) if notes else None
    return Verdict("analyze", outcome, headline, tuple(in_time_order(b.steps)), tuple(by_severity(b.findings)),
                   SeveralFacts(inputs, tuple(placements), primary.name), merged)


# --- each kind of input as a Source ----------------------------------------------------------------


def _peer_of(address: str) -> str | None:
    return address.rsplit("/p2p/", 1)[1] if "/p2p/" in address else None


def from_trace(name: str, trace: Trace, verdict: Verdict) -> Source:
    """A p2pdiag trace: its wall clock is the header's `started_at`; a dial's relayed connection is its
    HOP CONNECT answered OK, a listen's each STOP CONNECT received."""
    try:
        started: datetime | None = datetime.fromisoformat(trace.header.started_at)
    except ValueError:
        started = None
    target = next((e.peer_id for e in trace.events if isinstance(e, TargetResolved)), None)
    relayed = [RelayedSide(True, target, _peer_of(e.relay), e.t_s) for e in trace.events
               if isinstance(e, HopStatusReceived) and e.status_name == "OK" and target is not None]
    relayed += [RelayedSide(False, e.source_peer_id, e.relay_peer_id, e.t_s) for e in trace.events
                if isinstance(e, StopConnectReceived)]
    return Source(name, "p2pdiag trace", verdict, started, None, tuple(relayed), trace.header.command == "dial", trace)


def from_log(name: str, log: JsLog, verdict: Verdict) -> Source:
    """A js-libp2p log: its wall clock is its first ISO time (a browser console's time of day is none);
    its own peer id is the last /p2p/ of an address identify says others see it at (trace level); its
    relayed connections are js-libp2p's `relayed connection established` lines, through the relay it
    dialed (or reserved on)."""
    # a browser console's times of day have no date and no zone: no wall clock, placed by its connections only
    started = datetime.fromisoformat(log.first_time) if log.first_time and not log.times_of_day_only else None
    observed = [f for f in log.facts if isinstance(f, SelfAddressObserved)]
    self_id = _peer_of(observed[-1].address) if observed else None
    dialed = [f for f in log.facts if isinstance(f, AddressDialed) and f.ok and "/p2p-circuit" in f.address]
    relay_out = _peer_of(dialed[0].address.split("/p2p-circuit", 1)[0]) if dialed else None
    reserved = {f.relay_peer_id for f in log.facts if isinstance(f, ReservationCreated)}
    relay_in = next(iter(reserved)) if len(reserved) == 1 else None
    relayed = tuple(RelayedSide(f.outbound, f.peer_id, relay_out if f.outbound else relay_in, f.t_s)
                    for f in log.facts if isinstance(f, RelayedConnectionOpened))
    dialer = isinstance(verdict.details, LogFacts)
    return Source(name, "js-libp2p debug log", verdict, started, self_id, relayed, dialer, log)


def from_dump(name: str, dump: Dump, verdict: Verdict) -> Source:
    """A chrome://webrtc-internals dump: its wall clock is its first timestamp; it names no peer and no
    relayed connection (the browser sees only the WebRTC side), so it is placed by its clock alone. It is
    the dialing side when the peer connection that mattered made the offer."""
    started = datetime.fromisoformat(dump.first_time) if dump.first_time else None
    mattered = verdict.details.mattered if isinstance(verdict.details, DumpFacts) else None
    dialer = any(pc.key == mattered and pc.offer_sent for pc in dump.peer_connections)
    return Source(name, "chrome://webrtc-internals dump", verdict, started, None, (), dialer, dump)
