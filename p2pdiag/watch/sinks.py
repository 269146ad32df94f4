"""Where watch's observations and changes go: the trace, stdout (JSON lines, or a line per change),
a live table on a terminal, the metrics. Each is a `Sink` (p2pdiag/watch/runner.py); none decides
anything (the tracker did).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from p2pdiag.trace.events.watch import Changed, Probed, ReservationChanged
from p2pdiag.trace.recorder import Recorder
from p2pdiag.watch.model import Observation, ReservationState
from p2pdiag.watch.tracker import Change, why

JSON_SCHEMA_VERSION = 1
MAX_ERROR_CHARS = 300  # a peer's error text is its own: one line, cut


def one_line(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def probed_fields(obs: Observation) -> dict[str, Any]:
    """An observation in brief, as `watch.probed` records it."""
    out: dict[str, Any] = {
        "module": obs.module.value, "target": obs.target, "ok": obs.ok, "duration_s": round(obs.duration_s, 6),
        "phases": tuple(p.name for p in obs.phases),
        "phase_durations_s": tuple(round(p.seconds, 6) for p in obs.phases),
        "failed_phase": obs.failed_phase, "error_kind": obs.error_kind, "error": one_line(obs.error),
        "timed_out": obs.timed_out, "starved_s": None if obs.starved_s is None else round(obs.starved_s, 3),
    }
    if obs.relay is not None:
        r = obs.relay
        out.update(agent=one_line(r.agent), listen_addrs=r.listen_addrs, reservation_status=r.reservation_status,
                   limit_duration_s=r.limit_duration_s, limit_data_bytes=r.limit_data_bytes)
    if obs.peer is not None:
        p = obs.peer
        out.update(agent=one_line(p.agent), listen_addrs=p.listen_addrs,
                   paths=tuple(d.addr if d.relay is None else f"{d.addr} via {d.relay}" for d in p.dials if d.tried),
                   paths_ok=tuple(d.ok for d in p.dials if d.tried))
    if obs.upgrade is not None:
        out.update(outcome=obs.upgrade.outcome, causes=obs.upgrade.causes)
    if obs.gossip is not None:
        g = obs.gossip
        latencies = [c.latency_s for c in g.canaries if c.latency_s is not None]
        out.update(canaries_sent=g.sent, canaries_delivered=g.delivered,
                   canary_latency_max_s=round(max(latencies), 6) if latencies else None)
    return out


class TraceSink:
    """Every probe in brief, every reservation state and every change, into the run's recorder."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def _changes(self, changes: Sequence[Change]) -> None:
        for c in changes:
            self.rec.record(Changed, change=c.kind.value, module=c.module.value, target=c.target,
                            detail=one_line(c.detail, 1000) or "", bad=c.bad, subject=c.subject)

    def observed(self, obs: Observation, changes: Sequence[Change]) -> None:
        self.rec.record(Probed, **probed_fields(obs))
        self._changes(changes)

    def reserved(self, state: ReservationState, changes: Sequence[Change]) -> None:
        self.rec.record(ReservationChanged, target=state.target, up=state.up, expiry_unix_s=state.expiry_unix_s,
                        refreshes=state.refreshes, error_kind=state.error_kind, error=one_line(state.error))
        self._changes(changes)


def change_json(c: Change) -> dict[str, Any]:
    return {"schema_version": JSON_SCHEMA_VERSION, "type": "change", "at": iso(c.at_unix_s), "change": c.kind.value,
            "bad": c.bad, "module": c.module.value, "target": c.target, "subject": c.subject, "detail": c.detail}


class JsonLinesSink:
    """--json: one JSON object a line on stdout for each change (and the run's start and end)."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def write(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def observed(self, obs: Observation, changes: Sequence[Change]) -> None:
        for c in changes:
            self.write(change_json(c))

    def reserved(self, state: ReservationState, changes: Sequence[Change]) -> None:
        for c in changes:
            self.write(change_json(c))


def change_line(c: Change) -> str:
    mark = "✗" if c.bad else "✓"
    return f"{iso(c.at_unix_s)} {mark} {c.kind.value} {c.module.value} {c.target}: {c.detail}"


class LinesSink:
    """Not a terminal and no --json: one line of text per change, for a log file or journald."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def write(self, changes: Sequence[Change]) -> None:
        for c in changes:
            self.out.write(change_line(c) + "\n")
        if changes:
            self.out.flush()

    def observed(self, obs: Observation, changes: Sequence[Change]) -> None:
        self.write(changes)

    def reserved(self, state: ReservationState, changes: Sequence[Change]) -> None:
        self.write(changes)


class LiveTable:
    """A terminal: one row a target (its last probe, what is wrong now, the last change), redrawn by
    rich's Live a few times a second, with the changes printed above it as they happen."""

    MAX_DETAIL = 90

    def __init__(self, targets: Sequence[Any], console: Any) -> None:
        from rich.live import Live

        self.console = console
        self.rows: dict[tuple[str, str], dict[str, Any]] = {
            (t.module.value, t.name): {"ok": None, "at": None, "took": None, "why": "", "last": ""} for t in targets}
        self.live = Live(self._table(), console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveTable:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(expand=False)
        for col in ("module", "target", "state", "last probe", "took", "why / last change"):
            table.add_column(col, overflow="fold")
        for (module, name), row in self.rows.items():
            state = Text("…") if row["ok"] is None else Text("ok", "green") if row["ok"] else Text("FAIL", "red")
            took = "" if row["took"] is None else f"{row['took']:.2f} s"
            at = "" if row["at"] is None else iso(row["at"])[11:19]
            # names and a peer's error text are shown as written: Text, never parsed as rich markup
            table.add_row(Text(module), Text(name), state, at, took,
                          Text((row["why"] or row["last"])[: self.MAX_DETAIL]))
        return table

    def _print_changes(self, changes: Sequence[Change]) -> None:
        for c in changes:
            self.console.print(change_line(c), style="red" if c.bad else "green", markup=False, highlight=False)
            key = (c.module.value, c.target)
            if key in self.rows:
                self.rows[key]["last"] = one_line(f"{c.kind.value}: {c.detail}", self.MAX_DETAIL) or ""

    def observed(self, obs: Observation, changes: Sequence[Change]) -> None:
        row = self.rows.setdefault((obs.module.value, obs.target), {"ok": None, "at": None, "took": None,
                                                                    "why": "", "last": ""})
        row.update(ok=obs.ok, at=obs.started_unix_s, took=obs.duration_s,
                   why="" if obs.ok else one_line(why(obs), self.MAX_DETAIL) or "")
        self._print_changes(changes)
        self.live.update(self._table())

    def reserved(self, state: ReservationState, changes: Sequence[Change]) -> None:
        self._print_changes(changes)
        self.live.update(self._table())


class MetricsSink:
    """Feeds WatchMetrics (p2pdiag/watch/metrics.py)."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def observed(self, obs: Observation, changes: Sequence[Change]) -> None:
        self.metrics.observe(obs)
        for c in changes:
            self.metrics.event(c.kind.value, c.target)

    def reserved(self, state: ReservationState, changes: Sequence[Change]) -> None:
        self.metrics.reservation(state)
        for c in changes:
            self.metrics.event(c.kind.value, c.target)

