"""Diagnosis of a `relay-check` trace: for each relay its steps, its findings and its row of the table.

Pure: it reads the trace only. The voucher checks are redone here from the voucher bytes kept in
`reservation.accepted`, so `p2pdiag analyze` reaches the same verdict as the live run.

Which identity did what: each relay's phases ran one after another and each began with a
`relaycheck.phase_started`, so a relay event belongs to the phase started last on that relay;
events with a connection id are found by id ("r2.loop", "r2.loop-in").
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from p2pdiag.diagnosis import reservation
from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.facts import Cell, RejectedEntry, RelayCheckFacts, RelayResult, RelayVerdict, StepTimeout
from p2pdiag.diagnosis.findings import circuit as C
from p2pdiag.diagnosis.findings import relay as RL
from p2pdiag.diagnosis.findings import relaycheck as RF
from p2pdiag.diagnosis.findings import run as R
from p2pdiag.diagnosis.limits import CUT_EARLY_TOLERANCE_S, DurationReading, fmt_bytes, fmt_seconds, read_duration
from p2pdiag.diagnosis.model import Confidence, Finding, Outcome, Severity, StepStatus, Verdict
from p2pdiag.diagnosis.query import all_of, first
from p2pdiag.diagnosis.steps import SEVERITY_RANK, Builder, limit_text, short_peer_id
from p2pdiag.trace import events as ev
from p2pdiag.trace.events import relaycheck as rc
from p2pdiag.trace.file import Trace
from p2pdiag.wire import envelope
from p2pdiag.wire.circuit import HOP_PROTOCOL, STOP_PROTOCOL

E = TypeVar("E", bound=ev.Event)

LOOP_TITLE = "Loop test: a second identity dials the first through the relay"
SHARED_BUDGET_FRACTION = 0.75  # an echoed circuit cut below this share of the limit sent: one budget
TIMEOUT_STEP = {  # which --step-timeout bounded the failed wait
    ev.RelayDialFailed: "relay-connect",
    ev.IdentifyFailed: "identify",
    ev.ReservationFailed: "reserve",
    ev.HopFailed: "hop",
    ev.CircuitUpgradeFailed: "secure",
    ev.PingFailed: "ping",
    rc.TransferFailed: "transfer",
}


@dataclass
class _Segment:
    phase: rc.CheckPhase
    started: rc.PhaseStarted | None  # None when the phase was skipped
    events: list[ev.Event] = field(default_factory=list)
    skipped: rc.PhaseSkipped | None = None

    def first(self, cls: type[E], **match: Any) -> E | None:
        return first(self.events, cls, **match)

    def wall(self, e: ev.Event) -> float | None:
        """The wall clock when `e` happened, from the phase's own reading."""
        return self.started.wall_unix_s + (e.t_s - self.started.t_s) if self.started else None


def _about(e: ev.Event, listed: rc.RelayListed) -> bool:
    if getattr(e, "relay", None) == listed.relay:
        return True
    return isinstance(e, ev.ConnectionEvent) and e.connection_id.startswith(f"{listed.label}.")


def _segments(events: Iterable[ev.Event]) -> list[_Segment]:
    out: list[_Segment] = []
    for e in events:
        if isinstance(e, rc.PhaseStarted):
            out.append(_Segment(e.phase, e))
        elif isinstance(e, rc.PhaseSkipped):
            out.append(_Segment(e.phase, None, skipped=e))
        elif out:
            out[-1].events.append(e)
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def _ttl(seconds: float) -> str:
    """A reservation lifetime, rounded as people say it: 2 h, 59 min, 45 s."""
    if seconds >= 3540:
        return f"{round(seconds / 3600, 1):g} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class _Relay:
    """One relay's report: steps, findings, its table row and every measured value."""

    def __init__(self, listed: rc.RelayListed, events: tuple[ev.Event, ...], options: dict[str, Any]) -> None:
        self.listed = listed
        self.label = listed.label
        self.relay = listed.relay
        self.mine = [e for e in events if _about(e, listed)]
        self.segments = _segments(self.mine)
        self.options = options
        self.b = Builder()
        self.cells: dict[str, Cell] = {}
        self.facts: dict[str, Any] = {}  # what each phase measured, by phase
        self.verdict = RelayVerdict.INCOMPLETE
        self.finished: rc.RelayCheckFinished | None = None
        self.agent: str | None = None
        self.rsvp: ev.ReservationAccepted | None = None
        self.reading = DurationReading(None, None, False, "")

    # --- plumbing --------------------------------------------------------------------------

    def seg(self, phase: rc.CheckPhase) -> _Segment | None:
        return next((s for s in self.segments if s.phase is phase), None)

    def by_cid(self, cls: type[E], name: str) -> list[E]:
        return all_of(self.mine, cls, connection_id=f"{self.label}.{name}")

    def step(self, key: str, title: str, status: StepStatus, detail: str, e: ev.Event | None = None,
             duration_s: float | None = None) -> None:
        self.b.step(f"{self.label}.{key}", title, status, detail, e, duration_s)

    def find(self, finding: Finding) -> None:
        first_line, *rest = finding.evidence
        self.b.find(dataclasses.replace(finding, evidence=(f"{self.label}: {first_line}", *rest)))

    def cell(self, column: str, status: StepStatus, text: str) -> None:
        self.cells[column] = Cell(status, text)

    def failure(self, e: Any) -> None:
        """A failed wait that ran into its --step-timeout gets the timeout's own finding too.

        The relay's own `step.timed_out` gives the timeout that was in force; traces recorded before
        that event named its relay fall back to the run's options."""
        if getattr(e, "error_kind", None) is ev.ErrorKind.TIMEOUT:
            step = TIMEOUT_STEP.get(type(e), "?")
            if step == "secure" and str(getattr(e, "error", "")).startswith("STOP"):
                step = "stop"
            recorded = [t for t in all_of(self.mine, ev.StepTimedOut, step=step) if t.t_s <= e.t_s]
            seconds = recorded[-1].timeout_s if recorded else self.options.get("step_timeouts_s", {}).get(step)
            if isinstance(seconds, (int, float)):
                self.find(R.step_timed_out(step, float(seconds)))

    def skipped_step(self, key: str, title: str, phase: rc.CheckPhase) -> bool:
        seg = self.seg(phase)
        if seg is not None and seg.skipped is not None:
            self.step(key, title, StepStatus.SKIPPED, seg.skipped.reason, seg.skipped)
            return True
        return False

    # --- the phases ------------------------------------------------------------------------

    def connect(self) -> bool:
        seg = self.seg(rc.CheckPhase.CONNECT)
        title = f"Connect to the relay ({self.listed.transport})"
        connected = seg.first(ev.RelayConnected) if seg else None
        failed = seg.first(ev.RelayDialFailed) if seg else None
        if connected is not None:
            self.step("connect", title, StepStatus.OK, f"{connected.security or '?'}, {connected.muxer or '?'}",
                      connected, connected.duration_s)
            self.cell("reachable", StepStatus.OK, _ms(connected.duration_s))
            self.facts["connect"] = {"ok": True, "duration_s": connected.duration_s, "security": connected.security,
                                     "muxer": connected.muxer}
        elif failed is not None:
            self.step("connect", title, StepStatus.FAILED, f"{failed.error_kind.value}: {failed.error}", failed,
                      failed.duration_s)
            self.find(RL.relay_unreachable(failed))
            self.failure(failed)
            self.cell("reachable", StepStatus.FAILED, failed.error_kind.value.replace("_", " "))
            self.facts["connect"] = {"ok": False, "duration_s": failed.duration_s,
                                     "error_kind": failed.error_kind.value, "error": failed.error}
        else:
            self.step("connect", title, StepStatus.FAILED, "no answer before the run ended",
                      seg.started if seg else None)
            self.cell("reachable", StepStatus.FAILED, "no answer")
            self.facts["connect"] = {"ok": False}
        if connected is None:
            return False

        ident = first(self.by_cid(ev.IdentifyCompleted, "a"), ev.IdentifyCompleted)
        ident_failed = first(self.by_cid(ev.IdentifyFailed, "a"), ev.IdentifyFailed)
        if ident is not None:
            self.agent = ident.agent_version
            hop, stop = HOP_PROTOCOL in ident.protocols, STOP_PROTOCOL in ident.protocols
            observed = f"; sees us as {ident.observed_addr}" if ident.observed_addr else ""
            self.step("identify", "Identify the relay", StepStatus.OK if hop else StepStatus.WARNING,
                      f"{ident.agent_version or 'no agent'}; HOP {'offered' if hop else 'NOT offered'}, "
                      f"STOP {'offered' if stop else 'not offered'}; {len(ident.listen_addrs)} listen addrs{observed}",
                      ident, ident.duration_s)
            self.cell("hop", StepStatus.OK if hop else StepStatus.FAILED,
                      "yes" if hop else "not offered")
            self.facts["identify"] = {
                "ok": True, "agent_version": ident.agent_version, "protocol_version": ident.protocol_version,
                "protocols": list(ident.protocols), "hop": hop, "stop": stop, "listen_addrs": list(ident.listen_addrs),
                "observed_addr": ident.observed_addr, "duration_s": ident.duration_s}
        elif ident_failed is not None:
            self.step("identify", "Identify the relay", StepStatus.WARNING,
                      f"{ident_failed.error_kind.value}: {ident_failed.error}", ident_failed, ident_failed.duration_s)
            self.find(RL.identify_failed("relay", self.listed.relay_peer_id, ident_failed.error_kind,
                                        ident_failed.error))
            self.failure(ident_failed)
            self.cell("hop", StepStatus.WARNING, "unknown")
            self.facts["identify"] = {"ok": False, "error_kind": ident_failed.error_kind.value,
                                      "error": ident_failed.error}
        return True

    def reserve(self) -> bool:
        seg = self.seg(rc.CheckPhase.RESERVE)
        title = "Reserve a slot (RESERVE)"
        if seg is None or seg.started is None:
            self.cell("reservation", StepStatus.SKIPPED, "not tried")
            return False
        accepted, failed = seg.first(ev.ReservationAccepted), seg.first(ev.ReservationFailed)
        if accepted is not None:
            self.rsvp = accepted
            self.accepted(seg, accepted, "reservation", title)
            if not self.facts.get("identify", {}).get("hop", True):
                self.cell("hop", StepStatus.WARNING, "works, not advertised")
            return True
        if failed is None:
            self.step("reserve", title, StepStatus.FAILED, "no answer before the run ended", seg.started)
            self.cell("reservation", StepStatus.FAILED, "no answer")
            self.facts["reservation"] = {"ok": False}
            return False
        self.step("reserve", title, StepStatus.FAILED, f"{failed.status_name}: {failed.error}", failed,
                  failed.duration_s)
        self.facts["reservation"] = {"ok": False, "status": failed.status_name, "status_code": failed.status_code,
                                     "error_kind": failed.error_kind.value if failed.error_kind else None,
                                     "error": failed.error, "duration_s": failed.duration_s}
        no_hop = failed.error_kind is ev.ErrorKind.PROTOCOL_UNSUPPORTED or (
            failed.status_code is None and not self.facts.get("identify", {}).get("hop", True))
        if no_hop:
            agent = self.facts.get("identify", {}).get("agent_version")
            self.find(RL.relay_no_hop(self.relay, agent, f"RESERVE: {failed.error}"))
            self.cell("hop", StepStatus.FAILED, "not offered")
            self.cell("reservation", StepStatus.FAILED, "no HOP")
        elif failed.status_code is None or failed.status_name == "OK":
            self.find(RF.reserve_unanswered(self.relay, failed))
            self.failure(failed)
            self.cell("reservation", StepStatus.FAILED, "no answer" if failed.status_code is None else "malformed")
        elif failed.status_name.startswith("UNKNOWN"):
            self.find(RF.reserve_unknown_status(self.relay, failed))
            self.cell("reservation", StepStatus.FAILED, failed.status_name)
        else:
            self.find(RL.reservation_refused(failed))
            self.cell("reservation", StepStatus.FAILED, failed.status_name)
        return False

    def accepted(self, seg: _Segment, acc: ev.ReservationAccepted, fact: str, title: str) -> None:
        """A granted reservation: its expiry, addresses, Limit and voucher."""
        received = seg.wall(acc)
        ttl = acc.expire_unix_s - received if acc.expire_unix_s and received is not None else None
        refresh = fact == "refresh"
        self.facts[fact] = {"ok": True, "status": "OK", "duration_s": acc.duration_s,
                            "expire_unix_s": acc.expire_unix_s, "ttl_s": round(ttl, 1) if ttl is not None else None,
                            "addrs": list(acc.addrs), "voucher_bytes": acc.voucher_bytes}
        if not refresh:
            problems = reservation.addr_problems(acc.addrs, self.relay, self.listed.relay_peer_id)
            self.facts[fact]["addr_problems"] = problems
            if problems:
                self.find(RF.reservation_addrs(self.relay, problems))
            if ttl is None:
                self.find(RF.reservation_ttl(self.relay, acc.expire_unix_s, None))
            elif ttl <= 0 or not reservation.TTL_PLAUSIBLE_S[0] <= ttl <= reservation.TTL_PLAUSIBLE_S[1]:
                self.find(RF.reservation_ttl(self.relay, acc.expire_unix_s, ttl))
            self.limits(acc)
        expiry = f"expires in {_ttl(ttl)}" if ttl is not None and ttl > 0 else (
            f"EXPIRED {_ttl(-ttl)} ago" if ttl is not None else "no expiry")
        detail = (f"OK; {expiry} (unix {acc.expire_unix_s}); {len(acc.addrs)} addrs; voucher {acc.voucher_bytes} B; "
                  f"limit: {limit_text(read_duration(acc.announced_duration_s, self.agent), acc.announced_data_bytes)}")
        status = StepStatus.OK if ttl is None or ttl > 0 else StepStatus.FAILED
        if refresh:
            first_expire = self.rsvp.expire_unix_s if self.rsvp else None
            moved = (acc.expire_unix_s or 0) - (first_expire or 0)
            self.facts[fact]["extended_s"] = moved
            if first_expire and acc.expire_unix_s and moved < -envelope.EXPIRATION_TOLERANCE_S:
                status = StepStatus.WARNING
                self.find(RF.refresh_failed(self.relay, f"the refresh moved the expiry {moved} s earlier"))
            detail = f"OK; expiry moved {moved:+d} s (unix {acc.expire_unix_s})"
        else:
            self.cell("reservation", status, f"OK {_ttl(ttl)}" if ttl is not None and ttl > 0 else
                      ("EXPIRED" if ttl is not None else "OK, no expiry"))
        self.step("refresh" if refresh else "reserve", title, status, detail, acc, acc.duration_s)
        self.voucher(seg, acc, refresh)

    def limits(self, acc: ev.ReservationAccepted) -> None:
        self.reading = read_duration(acc.announced_duration_s, self.agent)
        data = acc.announced_data_bytes or None
        self.facts["limits"] = {
            "announced_duration": acc.announced_duration_s, "duration_s": self.reading.effective_s,
            "duration_unit_suspect": self.reading.suspect_unit, "data_bytes": data}
        duration = fmt_seconds(self.reading.effective_s) if self.reading.effective_s else "no time"
        if self.reading.suspect_unit:
            duration += " (ms?)"
        text = f"{duration}/{fmt_bytes(data) if data else 'no data'}"
        status = StepStatus.INFO
        if self.reading.suspect_unit:
            self.find(C.limit_unit_suspect(self.relay, self.reading))
            status = StepStatus.WARNING
        small = reservation.too_small(self.reading, data)
        if small:
            self.find(RF.limit_too_small(self.relay, small))
            status = StepStatus.WARNING
        self.cell("limits", status, text)

    def voucher(self, seg: _Segment, acc: ev.ReservationAccepted, refresh: bool) -> None:
        key = "refresh.voucher" if refresh else "voucher"
        title = "Check the refreshed reservation's voucher" if refresh else "Check the reservation voucher"
        if not acc.voucher_hex:
            if not refresh:
                self.find(RF.voucher_missing(self.relay))
                self.cell("voucher", StepStatus.INFO, "none")
                self.facts["voucher"] = {"present": False, "ok": None}
            self.step(key, title, StepStatus.INFO, "the relay sent no voucher", acc)
            return
        if seg.started is None:
            return
        try:
            relay_id = envelope.peer_id_bytes(self.listed.relay_peer_id)
            peer_id = envelope.peer_id_bytes(seg.started.peer_id)
            raw = bytes.fromhex(acc.voucher_hex)
        except ValueError as exc:
            self.step(key, title, StepStatus.WARNING, f"cannot check: {exc}", acc)
            return
        report = envelope.check_voucher(raw, relay_peer_id=relay_id, peer_id=peer_id, expire=acc.expire_unix_s,
                                        now_unix_s=seg.wall(acc))
        checks = [{"check": r.check.value, "ok": r.ok, "detail": r.detail} for r in report.results]
        for results in reservation.voucher_problems(report):
            self.find(RF.voucher_finding(self.relay, results, refresh))
        failed = [r.check.value for r in report.failed]
        if report.ok:
            status, detail = StepStatus.OK, f"all {len(report.results)} checks pass ({report.key_type} key)"
        elif failed:
            status, detail = StepStatus.FAILED, "; ".join(f"{r.check.value}: {r.detail}" for r in report.failed)
        else:
            status, detail = StepStatus.WARNING, report.unchecked[0].detail
        self.step(key, title, status, detail, acc)
        if not refresh:
            self.facts["voucher"] = {"present": True, "ok": report.ok if not report.unchecked or failed else None,
                                     "key_type": report.key_type, "expiration": report.expiration,
                                     "failed": failed, "checks": checks}
            self.cell("voucher", status, "OK" if report.ok else ", ".join(failed) or "unverified")
        else:
            self.facts["refresh"]["voucher_failed"] = failed

    def refresh(self) -> None:
        seg = self.seg(rc.CheckPhase.REFRESH)
        title = "Refresh the reservation before it expires"
        if seg is None or seg.started is None:
            return
        accepted, failed = seg.first(ev.ReservationAccepted), seg.first(ev.ReservationFailed)
        if accepted is not None:
            self.accepted(seg, accepted, "refresh", title)
        elif failed is not None:
            self.step("refresh", title, StepStatus.FAILED, f"{failed.status_name}: {failed.error}", failed,
                      failed.duration_s)
            self.find(RF.refresh_failed(self.relay, f"{failed.status_name}: {failed.error}"))
            self.failure(failed)
            self.facts["refresh"] = {"ok": False, "status": failed.status_name, "error": failed.error}

    def loop(self) -> None:
        seg = self.seg(rc.CheckPhase.LOOP)
        if seg is None or seg.started is None:
            self.cell("loop", StepStatus.SKIPPED, "not tried")
            return
        dialer = seg.started.peer_id
        reserved = self.seg(rc.CheckPhase.RESERVE)
        listener = reserved.started.peer_id if reserved and reserved.started else None
        facts: dict[str, Any] = {"ok": False, "dialer_peer_id": dialer, "listener_peer_id": listener}
        self.facts["loop"] = facts
        failed_dial = seg.first(ev.RelayDialFailed)
        status, hop_failed = seg.first(ev.HopStatusReceived), seg.first(ev.HopFailed)
        stop = first(self.by_cid(ev.StopConnectReceived, "loop-in"), ev.StopConnectReceived)
        secured = first(self.by_cid(ev.CircuitSecured, "loop"), ev.CircuitSecured)
        upgrade_failed = (first(self.by_cid(ev.CircuitUpgradeFailed, "loop-in"), ev.CircuitUpgradeFailed)
                          or first(self.by_cid(ev.CircuitUpgradeFailed, "loop"), ev.CircuitUpgradeFailed))
        if failed_dial is not None:
            return self.loop_failed("connect", f"{failed_dial.error_kind.value}: {failed_dial.error}", failed_dial)
        if hop_failed is not None:
            self.failure(hop_failed)
            return self.loop_failed("HOP CONNECT", f"{hop_failed.error_kind.value} while {hop_failed.stage}: "
                                    f"{hop_failed.error}", hop_failed)
        if status is None:
            return self.loop_failed("HOP CONNECT", "no answer before the run ended", seg.started)
        facts["status"] = status.status_name
        facts["hop_limit"] = {"duration": status.announced_duration_s, "data_bytes": status.announced_data_bytes}
        if stop is not None:
            facts["stop_limit"] = {"duration": stop.announced_duration_s, "data_bytes": stop.announced_data_bytes}
        limit = limit_text(read_duration(status.announced_duration_s, self.agent), status.announced_data_bytes)
        self.step("loop.hop", f"{short_peer_id(dialer)} asks the relay for the first identity (HOP CONNECT)",
                  StepStatus.OK if status.status_name == "OK" else StepStatus.FAILED,
                  f"STATUS {status.status_name}; limit: {limit}", status, status.duration_s)
        if status.status_name != "OK":
            return self.loop_failed("HOP CONNECT", f"the relay answered {status.status_name} for a peer that holds "
                                    "a reservation", status, stepped=True)
        if stop is not None:
            self.step("loop.stop", "The first identity gets STOP CONNECT from the relay", StepStatus.OK,
                      f"from {short_peer_id(stop.source_peer_id)}; limit: "
                      f"{limit_text(read_duration(stop.announced_duration_s, self.agent), stop.announced_data_bytes)}",
                      stop)
        self.compare_limits(status, stop)
        pings = self.by_cid(ev.PingCompleted, "loop")
        ping_failed = first(self.by_cid(ev.PingFailed, "loop"), ev.PingFailed)
        if secured is not None:  # traces from before the loop ran raw on the circuit
            self.step("loop.secure", "Secure the circuit end to end (Noise + muxer)", StepStatus.OK,
                      f"{secured.security or '?'}, {secured.muxer or '?'}", secured, secured.duration_s)
        elif not pings and upgrade_failed is not None:
            # The first identity's STOP exchange failed (or, in older traces, the secure session).
            stage = "STOP" if upgrade_failed.error.startswith("STOP exchange") else "secure"
            self.failure(upgrade_failed)
            return self.loop_failed(stage, f"{upgrade_failed.error_kind.value}: {upgrade_failed.error}",
                                    upgrade_failed)
        if not pings:
            if ping_failed is not None:
                self.failure(ping_failed)
            why = f"{ping_failed.error_kind.value}: {ping_failed.error}" if ping_failed else "no ping was answered"
            if stop is None:
                why += "; the first identity got no STOP CONNECT from the relay"
            return self.loop_failed("ping", why, ping_failed or secured or status)
        rtts = [p.rtt_s for p in pings]
        facts.update(ok=True, rtt_s=rtts, rtt_median_s=statistics.median(rtts))
        self.step("loop.ping", "Ping through the relay: 32 random bytes echoed by the first identity",
                  StepStatus.OK, f"{len(rtts)} round trips, median {_ms(statistics.median(rtts))}", pings[-1])
        speed = self.throughput(facts)
        self.cell("loop", StepStatus.OK, f"{_ms(statistics.median(rtts))}" + (f", {speed}" if speed else ""))
        self.circuit_end("loop", facts)

    def loop_failed(self, stage: str, why: str, e: ev.Event | None, stepped: bool = False) -> None:
        if not stepped:
            self.step("loop", LOOP_TITLE, StepStatus.FAILED, f"{stage}: {why}", e)
        self.facts["loop"].update(ok=False, failed_stage=stage, error=why)
        self.find(RF.loop_failed(self.relay, stage, why))
        self.cell("loop", StepStatus.FAILED, stage)

    def compare_limits(self, hop: ev.HopStatusReceived, stop: ev.StopConnectReceived | None) -> None:
        seen = {"RESERVE reply": (self.rsvp.announced_duration_s, self.rsvp.announced_data_bytes) if self.rsvp
                else None, "HOP STATUS": (hop.announced_duration_s, hop.announced_data_bytes)}
        if stop is not None:
            seen["STOP CONNECT"] = (stop.announced_duration_s, stop.announced_data_bytes)
        norm = {k: (v[0] or 0, v[1] or 0) for k, v in seen.items() if v is not None}
        if len(set(norm.values())) > 1:
            self.find(RF.limit_inconsistent(self.relay, {k: v for k, v in seen.items() if v is not None}))

    def throughput(self, facts: dict[str, Any]) -> str | None:
        seg = self.seg(rc.CheckPhase.THROUGHPUT)
        title = "Push a payload through the circuit (throughput)"
        if seg is None:
            return None
        if seg.skipped is not None:
            self.step("loop.throughput", title, StepStatus.SKIPPED, seg.skipped.reason, seg.skipped)
            facts["throughput_skipped"] = seg.skipped.reason
            return None
        done = first(self.by_cid(rc.TransferCompleted, "loop"), rc.TransferCompleted)
        failed = first(self.by_cid(rc.TransferFailed, "loop"), rc.TransferFailed)
        if done is not None:
            rate = done.payload_bytes / done.duration_s if done.duration_s > 0 else None
            speed = f"{fmt_bytes(int(rate))}/s" if rate else "instant"
            facts["throughput"] = {"payload_bytes": done.payload_bytes, "duration_s": done.duration_s,
                                   "bytes_per_s": rate}
            self.step("loop.throughput", title, StepStatus.OK,
                      f"{fmt_bytes(done.payload_bytes)} in {_ms(done.duration_s)}: {speed}", done, done.duration_s)
            return speed
        if failed is not None:
            facts["throughput"] = {"payload_bytes": failed.payload_bytes, "error": failed.error}
            self.step("loop.throughput", title, StepStatus.WARNING,
                      f"{fmt_bytes(failed.payload_bytes)}: {failed.error_kind.value}: {failed.error}", failed,
                      failed.duration_s)
            self.find(RF.transfer_failed(self.relay, failed))
            self.failure(failed)
        return None

    def circuit_end(self, name: str, facts: dict[str, Any]) -> None:
        closed = first(self.by_cid(ev.CircuitClosed, name), ev.CircuitClosed)
        if closed is None:
            return
        facts["circuit_bytes_sent"], facts["circuit_bytes_received"] = closed.bytes_sent, closed.bytes_received
        if closed.closer is ev.Closer.LOCAL:
            return
        detail = (f"ended by the {closed.closer.value} after {closed.age_s:.1f} s and "
                  f"{fmt_bytes(closed.bytes_sent + closed.bytes_received)}: {closed.reason}")
        self.step(f"{name}.end", "The loop circuit ended before p2pdiag closed it", StepStatus.FAILED, detail, closed)
        self.find(RF.loop_failed(self.relay, "hold", detail))
        self.cell("loop", StepStatus.FAILED, "cut early")

    def measure(self) -> None:
        if not self.options.get("measure_limits"):
            return
        measured: dict[str, Any] = {}
        self.facts["measured"] = measured
        for kind, phase in ((rc.LimitKind.DATA, rc.CheckPhase.MEASURE_DATA),
                            (rc.LimitKind.DURATION, rc.CheckPhase.MEASURE_DURATION)):
            title = f"Measure the {kind.value} limit: hold a circuit until the relay cuts it"
            key = f"measure.{kind.value}"
            seg = self.seg(phase)
            if seg is None or self.skipped_step(key, title, phase):
                measured[kind.value] = {"measured": False, "skipped": seg.skipped.reason if seg and seg.skipped
                                        else "not reached"}
                continue
            ended = first(self.by_cid(rc.LimitProbeEnded, kind.value), rc.LimitProbeEnded)
            if ended is None:
                why = self.circuit_failure(seg, kind.value)
                self.step(key, title, StepStatus.WARNING, f"no measurement: {why}", seg.started)
                measured[kind.value] = {"measured": False, "error": why}
                continue
            started = first(self.by_cid(rc.LimitProbeStarted, kind.value), rc.LimitProbeStarted)
            measured[kind.value] = self.measured(kind, key, title, ended, started)

    def circuit_failure(self, seg: _Segment, name: str) -> str:
        hop = seg.first(ev.HopStatusReceived)
        failed = seg.first(ev.HopFailed) or first(self.by_cid(ev.CircuitUpgradeFailed, name), ev.CircuitUpgradeFailed)
        if failed is not None:
            return f"{failed.error_kind.value}: {failed.error}"
        return f"HOP CONNECT answered {hop.status_name}" if hop else "the circuit did not open"

    def measured(self, kind: rc.LimitKind, key: str, title: str, ended: rc.LimitProbeEnded,
                 started: rc.LimitProbeStarted | None) -> dict[str, Any]:
        total = ended.bytes_sent + ended.bytes_received
        out: dict[str, Any] = {"measured": True, "cut": ended.cut, "age_s": ended.age_s,
                               "bytes_sent": ended.bytes_sent, "bytes_received": ended.bytes_received,
                               "reason": ended.reason, "announced": started.announced if started else None}
        if kind is rc.LimitKind.DATA:
            limit = started.announced if started and started.announced else 0
            per_direction = ended.bytes_sent >= SHARED_BUDGET_FRACTION * limit and total > 1.25 * limit
            early = ended.cut and not per_direction and total < SHARED_BUDGET_FRACTION * limit
            out["shared_budget"] = (not per_direction) if ended.cut else None
            what = (f"cut after {fmt_bytes(total)} ({fmt_bytes(ended.bytes_sent)} sent, "
                    f"{fmt_bytes(ended.bytes_received)} echoed back) of an announced {fmt_bytes(limit)}")
            if ended.cut:
                what += ("; each direction has its own budget" if per_direction
                         else "; both directions share one budget")
            announced = fmt_bytes(limit)
        else:
            effective = self.reading.effective_s or 0.0
            early = ended.cut and ended.age_s < effective - CUT_EARLY_TOLERANCE_S
            what = f"cut after {ended.age_s:.1f} s" if ended.cut else f"not cut after {ended.age_s:.1f} s"
            what += f" against an announced {self.reading.announced}" + (
                f" (read as {fmt_seconds(effective)})" if self.reading.suspect_unit else " s")
            announced = fmt_seconds(effective)
            if ended.cut and not early:
                self.confirm_unit(ended)
        if not ended.cut:
            self.find(RF.limit_not_enforced(self.relay, kind.value, f"{what}; {ended.reason}"))
        elif early:
            self.find(RF.limit_early(self.relay, kind.value, what, announced))
        status = StepStatus.WARNING if (early and ended.cut) else StepStatus.INFO
        self.step(key, title, status, what, ended, ended.age_s)
        return out

    def confirm_unit(self, ended: rc.LimitProbeEnded) -> None:
        """A duration cut that lands on the millisecond reading settles the unit question."""
        for n, f in enumerate(self.b.findings):
            if f.code is Code.RELAY_LIMIT_UNIT:
                self.b.findings[n] = dataclasses.replace(
                    f, confidence=Confidence.CERTAIN, settle=None,
                    evidence=(*f.evidence,
                              f"{self.label}: measured: the relay cut a held circuit after {ended.age_s:.1f} s"))

    def drop(self) -> None:
        seg = self.seg(rc.CheckPhase.DROP)
        title = "Drop the reserving connection; the reservation should go with it"
        if seg is None or self.skipped_step("drop", title, rc.CheckPhase.DROP):
            return
        answers = [e for e in seg.events if isinstance(e, (ev.HopStatusReceived, ev.HopFailed))]
        answer = answers[-1] if answers else None
        self.facts["drop"] = {"attempts": len(answers)}
        if isinstance(answer, ev.HopStatusReceived):
            self.facts["drop"].update(status=answer.status_name, ok=answer.status_name == "NO_RESERVATION")
            if answer.status_name == "NO_RESERVATION":
                self.step("drop", title, StepStatus.OK, "HOP CONNECT to the dropped peer: NO_RESERVATION", answer)
                return
            self.step("drop", title, StepStatus.WARNING, f"HOP CONNECT to the dropped peer: STATUS "
                      f"{answer.status_name}, not NO_RESERVATION", answer)
            self.find(RF.keeps_reservation(self.relay, answer.status_name, len(answers)))
            return
        why = f"{answer.error_kind.value}: {answer.error}" if answer else "no answer before the run ended"
        self.facts["drop"].update(ok=None, error=why)
        self.step("drop", title, StepStatus.WARNING, f"no usable answer: {why}", answer or seg.started)

    def slots(self) -> None:
        asked = self.options.get("reservations") or 0
        if not asked:
            return
        title = f"Open {asked} more reservations from {asked} identities"
        if self.skipped_step("slots", title, rc.CheckPhase.SLOT):
            self.facts["slots"] = {"asked": asked, "granted": None}
            return
        slots = sorted((s for s in self.segments if s.phase is rc.CheckPhase.SLOT and s.started),
                       key=lambda s: s.started.index if s.started else 0)
        granted = 0
        refusal: ev.ReservationFailed | None = None
        dial_failed: ev.RelayDialFailed | None = None
        for s in slots:
            if s.first(ev.ReservationAccepted) is not None:
                granted += 1
            refusal = refusal or s.first(ev.ReservationFailed)
            dial_failed = dial_failed or s.first(ev.RelayDialFailed)
        facts: dict[str, Any] = {"asked": asked, "granted": granted, "refused_at": None}
        self.facts["slots"] = facts
        last_seg = slots[-1].started if slots else None
        if refusal is not None:
            facts.update(refused_at=granted + 1, status=refusal.status_name, error=refusal.error)
            self.step("slots", title, StepStatus.WARNING, f"{granted} granted, then the relay refused number "
                      f"{granted + 1}: {refusal.status_name}", refusal)
            self.find(RF.slots_full(self.relay, asked, granted, refusal))
        elif dial_failed is not None:
            facts["error"] = dial_failed.error
            self.step("slots", title, StepStatus.WARNING, f"{granted} granted, then a connection failed: "
                      f"{dial_failed.error_kind.value}: {dial_failed.error}", dial_failed)
        else:
            self.step("slots", title, StepStatus.OK if granted == asked else StepStatus.WARNING,
                      f"{granted} of {asked} granted", last_seg)
        after = self.seg(rc.CheckPhase.SLOT_AFTER_FREE)
        if after is None or after.started is None:
            return
        ok = after.first(ev.ReservationAccepted)
        again = after.first(ev.ReservationFailed)
        facts["freed_slot_reused"] = ok is not None
        if ok is not None:
            self.step("slots.freed", "Free one slot (disconnect its holder) and try the refused identity again",
                      StepStatus.OK, "granted: the relay frees a slot when its holder disconnects", ok)
        elif again is not None:
            self.step("slots.freed", "Free one slot (disconnect its holder) and try the refused identity again",
                      StepStatus.WARNING, f"still refused ({again.status_name}): the relay keeps counting the "
                      "reservation of a disconnected peer", again)
            self.find(RF.slots_not_freed(self.relay, again.status_name))

    def end(self) -> RelayVerdict:
        finished = first(self.mine, rc.RelayCheckFinished)
        crashed = first(self.mine, rc.ProbeCrashed)
        if crashed is not None:
            self.find(RF.probe_crashed(self.relay, crashed))
        if finished is not None and finished.out_of_time:
            self.find(RF.incomplete(self.relay, f"its share of --timeout ran out after {finished.duration_s:.1f} s"))
        self.finished = finished
        # p2pdiag's own bug is an error in the verdict but not the relay's failure: its check is incomplete
        severities = {f.severity for f in self.b.findings if f.code is not Code.RELAY_CHECK_CRASHED}
        if Severity.ERROR in severities:
            verdict = RelayVerdict.FAIL
        elif finished is None or crashed is not None:
            verdict = RelayVerdict.INCOMPLETE
        elif Severity.WARNING in severities:
            verdict = RelayVerdict.WARN
        else:
            verdict = RelayVerdict.PASS
        status = {RelayVerdict.PASS: StepStatus.OK, RelayVerdict.WARN: StepStatus.WARNING,
                  RelayVerdict.FAIL: StepStatus.FAILED, RelayVerdict.INCOMPLETE: StepStatus.SKIPPED}[verdict]
        self.cell("verdict", status, verdict.value.upper())
        self.verdict = verdict
        return verdict

    def result(self, findings: tuple[int, ...], codes: tuple[Code, ...]) -> RelayResult:
        """This relay's result, once run; `findings`: where its findings went in the verdict's list."""
        listed, finished = self.listed, self.finished
        timed_out = tuple(StepTimeout(t.step, t.timeout_s, t.t_s) for t in all_of(self.mine, ev.StepTimedOut))
        return RelayResult(listed.label, listed.relay, listed.relay_peer_id, listed.transport, listed.source,
                           listed.line, dict(self.facts), timed_out, finished is not None,
                           finished.duration_s if finished else None, bool(finished and finished.out_of_time),
                           self.verdict, dict(self.cells), findings, codes)

    def run(self) -> RelayVerdict:
        if self.connect() and self.reserve():
            self.refresh()
            self.loop()
            self.measure()
            self.drop()
        self.slots()
        for column in ("reachable", "hop", "reservation", "limits", "voucher", "loop"):
            self.cells.setdefault(column, Cell(StepStatus.SKIPPED, ""))
        return self.end()


def diagnose_relay_check(trace: Trace) -> Verdict:
    events = trace.events
    options = trace.header.options
    relays = [_Relay(listed, events, options) for listed in all_of(events, rc.RelayListed)]
    verdicts = [r.run() for r in relays]

    steps = []
    findings: list[Finding] = []
    general = Builder()
    rejected = all_of(events, rc.EntryRejected)
    bad = [r for r in rejected if r.duplicate_of is None]
    for r in rejected:
        where = f"{r.source}:{r.line}"
        if r.duplicate_of:
            general.step(f"entry.{r.source}:{r.line}", f"{where}: {r.text}", StepStatus.INFO,
                         f"repeats {r.duplicate_of}; checked once", r)
        else:
            general.step(f"entry.{r.source}:{r.line}", f"{where}: {r.text}", StepStatus.FAILED, r.error, r)
    if bad:
        general.find(RF.entries_rejected(bad))
    stop = first(events, ev.RunInterrupted)
    if stop is not None:
        general.find(R.interrupted(stop.reason.value, stop.t_s))
    steps += general.steps
    findings += general.findings
    results = []
    for r in relays:
        steps += r.b.steps
        indexes = []
        for f in _by_severity(r.b.findings):
            indexes.append(len(findings))
            findings.append(f)
        results.append(r.result(tuple(indexes), tuple(findings[i].code for i in indexes)))

    counts = {v: verdicts.count(v) for v in RelayVerdict}
    if stop is not None:
        outcome = Outcome.INTERRUPTED
    elif not relays or bad or counts[RelayVerdict.FAIL] or counts[RelayVerdict.INCOMPLETE]:
        outcome = Outcome.RELAY_PROBLEM
    else:
        outcome = Outcome.RELAYS_OK
    headline = _headline(relays, counts, bad, stop is not None)
    facts = RelayCheckFacts(tuple(results), tuple(RejectedEntry(r.source, r.line, r.text, r.error, r.duplicate_of)
                                                   for r in rejected))
    return Verdict("relay-check", outcome, headline, tuple(steps), tuple(findings), facts)


def _by_severity(findings: list[Finding]) -> list[Finding]:
    """Errors, warnings, information; the generic step-timeout after the finding it explains."""
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], f.code is Code.STEP_TIMEOUT))


def _headline(relays: list[_Relay], counts: dict[RelayVerdict, int], bad: list[rc.EntryRejected], stopped: bool) -> str:
    n = len(relays)
    words = ((RelayVerdict.PASS, "passed"), (RelayVerdict.WARN, "passed with warnings"),
             (RelayVerdict.FAIL, "failed"), (RelayVerdict.INCOMPLETE, "not finished"))
    parts = [f"{counts[v]} {word}" for v, word in words if counts[v]]
    text = f"Checked {n} relay{'s' if n != 1 else ''}: {', '.join(parts)}." if n else "No relay was checked."
    failing = [r for r in relays if r.verdict is RelayVerdict.FAIL]
    if len(relays) == 1 and failing:
        worst = next((f for f in failing[0].b.findings if f.severity is Severity.ERROR), None)
        if worst is not None:
            text += f" {worst.title}."
    if bad:
        text += f" {len(bad)} entr{'ies' if len(bad) != 1 else 'y'} of --from-file could not be read as relays."
    if stopped:
        text += " Stopped before every check finished."
    return text
