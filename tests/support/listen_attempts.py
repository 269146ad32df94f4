"""Long `listen` traces made of recorded inbound attempts, for the live view's test and bench.

Each recorded listen trace (tests/traces/) is cut into its attempts: one inbound relayed
connection's events with those of the WebRTC upgrade it carried, as the listener recorded them.
`long_listen` lays N of them after one recorded run's start (relay, identify, reservation), each
with fresh connection ids (`inbound-K`, `webrtc-inbound-K`) and its times shifted, so they may
overlap, and mixes in what a long listen also records: reservation refreshes and pings served on
the relay's own connection. The dialers stay the recorded ones, so attempts from one dialer make
long reconnect loops (the live view's hardest case), unless `fresh_peers`.

`view_before` and `shown_before` are what `listen` showed of an attempt before its live view (the
trace so far diagnosed whole), kept as they were for the test and the bench that compare the two.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.text import Text

from p2pdiag.diagnosis.listen import attempt_steps, diagnose_listen
from p2pdiag.diagnosis.listen_live import AttemptView, LoopPlace
from p2pdiag.diagnosis.model import Step, StepStatus
from p2pdiag.render.terminal import MARKS
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitUpgradeFailed,
    ConnectionEvent,
    Event,
    PingServed,
    RelayDialStarted,
    ReservationAccepted,
    RunInterrupted,
    StopConnectReceived,
    WebRTCUpgradeStarted,
)
from p2pdiag.trace.file import Trace, load

TRACES = Path(__file__).resolve().parents[1] / "traces"
START = TRACES / "reconnect" / "listen-js-loop-udp-blocked.jsonl"


def listen_traces() -> list[Path]:
    """Every recorded trace of `p2pdiag listen`."""
    out = []
    for path in sorted(TRACES.rglob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            if json.loads(f.readline()).get("command") == "listen":
                out.append(path)
    return out


def attempts_of(trace: Trace) -> list[tuple[str, list[Event]]]:
    """Each inbound attempt of TRACE: its connection id and its events (relayed connection and upgrade)."""
    out = []
    for stop in (e for e in trace.events if isinstance(e, StopConnectReceived)):
        cid = stop.connection_id
        ids = {cid} | {e.connection_id for e in trace.events
                       if isinstance(e, WebRTCUpgradeStarted) and e.relayed_connection_id == cid}
        out.append((cid, [e for e in trace.events if isinstance(e, ConnectionEvent)
                          and (e.connection_id in ids or getattr(e, "relayed_connection_id", None) == cid)]))
    return out


def _renamed(e: Event, names: dict[str, str], shift: float, reservation: ReservationAccepted, relay_peer_id: str,
             peer: str | None) -> Event:
    changes: dict[str, object] = {"t_s": round(e.t_s + shift, 6)}
    for name in ("connection_id", "relayed_connection_id"):
        value = getattr(e, name, None)
        if value in names:
            changes[name] = names[value]
    if isinstance(e, StopConnectReceived):  # through the one relay, with the Limit it announced
        changes["relay_peer_id"] = relay_peer_id
        changes["announced_duration_s"] = reservation.announced_duration_s
        changes["announced_data_bytes"] = reservation.announced_data_bytes
        if peer is not None:
            changes["source_peer_id"] = peer
    return dataclasses.replace(e, **changes)


def long_listen(n: int, seed: int = 1, spacing_s: float = 8.0, overlap: float = 0.0,
                fresh_peers: bool = False, end: bool = True, only: str = "", start: Path = START) -> Trace:
    """A listen trace of N recorded attempts, one every SPACING_S seconds on average; OVERLAP (0-1)
    is the chance that the next starts before this one ended; ONLY: the attempts of the recorded
    traces whose name has it; START: the recorded run whose start (relay, reservation) it begins with."""
    rng = random.Random(seed)
    begun = load(start)
    first_stop = next(i for i, e in enumerate(begun.events) if isinstance(e, StopConnectReceived))
    head = list(begun.events[:first_stop])
    relay = next(e for e in head if isinstance(e, RelayDialStarted))
    reservation = next(e for e in head if isinstance(e, ReservationAccepted))
    pool = [a for path in listen_traces() if only in path.name for a in attempts_of(load(path))]
    t = head[-1].t_s + 1.0
    body: list[Event] = []
    for k in range(1, n + 1):
        cid, events = pool[rng.randrange(len(pool))]
        wids = sorted({e.connection_id for e in events if isinstance(e, WebRTCUpgradeStarted)})
        names = {cid: f"inbound-{k}"} | {w: f"webrtc-inbound-{k}" + (f"-{j}" if j else "") for j, w in enumerate(wids)}
        shift = t - events[0].t_s
        peer = f"12D3KooWFreshDialer{k:06d}" if fresh_peers else None
        body += [_renamed(e, names, shift, reservation, relay.relay_peer_id, peer) for e in events]
        length = events[-1].t_s - events[0].t_s
        t += rng.uniform(0.2, length) if rng.random() < overlap and length > 0.2 else length + rng.uniform(
            0.5, 2 * spacing_s)
        if rng.random() < 0.1:
            body.append(dataclasses.replace(reservation, t_s=round(t - 0.25, 6), refresh=True))
        if rng.random() < 0.2:
            body.append(PingServed(t_s=round(t - 0.5, 6), connection_id="direct", count=k))
    events = head + sorted(body, key=lambda e: e.t_s)
    if end:
        events.append(RunInterrupted(t_s=round(events[-1].t_s + 1.0, 6), reason=_interrupt_reason(begun)))
    return dataclasses.replace(begun, events=tuple(events))


def _interrupt_reason(trace: Trace) -> object:
    return next(e.reason for e in trace.events if isinstance(e, RunInterrupted))


def moments(events: tuple[Event, ...]) -> Iterator[tuple[int, str]]:
    """Where `listen` tells each attempt (on_inbound_ended): (the index of the event after which it
    ended, its id). A secured one ends with its circuit's close; one never secured with its failed
    handshake."""
    stops = {e.connection_id for e in events if isinstance(e, StopConnectReceived)}
    secured = {e.connection_id for e in events if isinstance(e, CircuitSecured)}
    told: set[str] = set()
    for i, e in enumerate(events):
        cid = getattr(e, "connection_id", None)
        if cid in stops and cid not in told and (
                isinstance(e, CircuitClosed) if cid in secured else isinstance(e, CircuitUpgradeFailed)):
            told.add(cid)
            yield i, cid


# --- what `listen` showed before its live view (cli/listen.py's on_inbound_ended at 281626d) ---------


def view_before(trace: Trace, cid: str, indexed: bool = True) -> AttemptView:
    """The steps and loop places `listen` showed for attempt CID of TRACE (the trace so far) before
    issue 13: the whole trace diagnosed, its steps for CID, the reconnect loops CID is a round of.
    `indexed` False: with the diagnosis as it was too (it read the whole trace for every attempt)."""
    verdict = diagnose_listen(trace, indexed=indexed)
    loops = tuple(LoopPlace(loop["peer_id"], loop["connection_ids"].index(cid) + 1, loop["period_s"])
                  for loop in verdict.facts.get("reconnect_loops", []) if cid in loop["connection_ids"])
    return AttemptView(cid, tuple(attempt_steps(verdict, cid)), loops)


def shown_before(trace: Trace, cid: str, console: Console, indexed: bool = False) -> None:
    """on_inbound_ended as it was (without --redact), its rendering (render_steps then) with it."""
    so_far = diagnose_listen(trace, indexed=indexed)  # what diagnose(trace) picked
    console.print(f"[bold]{cid} ended[/bold]")
    _render_steps_before(attempt_steps(so_far, cid), console)
    for loop in so_far.facts.get("reconnect_loops", []):
        if cid in loop["connection_ids"]:
            console.print(f"[bold yellow]reconnect loop:[/bold yellow] "
                          f"round {loop['connection_ids'].index(cid) + 1} "
                          f"from {loop['peer_id']}, one every {loop['period_s']:.1f} s")


def _render_steps_before(steps: list[Step], console: Console) -> None:
    """render/terminal.py's render_steps at 281626d: one print a line."""
    for step in steps:
        mark, style = MARKS[step.status]
        line = Text()
        line.append(f" {mark} ", style=style)
        line.append(step.title, style="bold" if step.status is StepStatus.FAILED else "")
        timing = []
        if step.t_s is not None:
            timing.append(f"t={step.t_s:.2f}s")
        if step.duration_s is not None:
            timing.append(f"{step.duration_s * 1000:.0f} ms")
        if timing:
            line.append(f"  [{', '.join(timing)}]", style="dim")
        console.print(line)
        console.print(Text(f"     {step.detail}", style="dim" if step.status is StepStatus.OK else ""))
