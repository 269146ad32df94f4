"""Diagnosis of one WebRTC upgrade attempt: its steps, and why it did not become direct.

Pure: events in, steps and findings out. `upgrade_story(events, relayed_connection_id)` finds the
attempt made over that relayed connection (either role) and tells it; dial and listen verdicts
put its steps and findings among their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pdiag.diagnosis.findings import webrtc as W
from p2pdiag.diagnosis.findings.webrtc import endpoint, pair_text
from p2pdiag.diagnosis.model import Finding, Step, StepStatus
from p2pdiag.diagnosis.network import network_findings
from p2pdiag.diagnosis.query import all_of, count, first, of_connection
from p2pdiag.diagnosis.steps import by_severity, in_time_order
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairSelected,
    CandidatePairStateChanged,
    CandidateType,
    Closer,
    DataChannelOpened,
    DescriptionSignaled,
    DtlsState,
    DtlsStateChanged,
    ErrorKind,
    Event,
    IceChecksRefused,
    LocalCandidateGathered,
    Path,
    PingCompleted,
    PingFailed,
    PingServed,
    RemoteCandidateReceived,
    RemoteCandidateRejected,
    RemoteEndOfCandidates,
    SignalingFailed,
    SignalingMessageType,
    SignalingStage,
    SignalingStreamEnded,
    SignalingStreamOpened,
    UpgradeRole,
    UpgradeStep,
    WebRTCConnectionClosed,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
    WebRTCUpgradeSucceeded,
)
from p2pdiag.webrtc.signaling import PROTOCOL as SIGNALING_PROTOCOL

ABANDONED_WITHIN_S = 15.0  # a remote close this soon after success, with no stream, is an abandoned upgrade


@dataclass(frozen=True, slots=True)
class UpgradeStory:
    attempted: bool
    upgraded: bool
    connection_id: str | None = None
    role: UpgradeRole | None = None
    summary: str = ""  # one line: "upgraded to WebRTC in 82 ms", "WebRTC upgrade failed at ice: ..."
    steps: tuple[Step, ...] = ()
    findings: tuple[Finding, ...] = ()
    facts: dict[str, object] = field(default_factory=dict)


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.0f} ms"


def _description(d: DescriptionSignaled) -> str:
    parts = [f"{d.sdp_bytes} B"]
    parts.append(f"{d.candidates} candidate{'s' if d.candidates != 1 else ''} inline" if d.candidates
                 else "no candidates inline (trickled)")
    if d.end_of_candidates:
        parts.append("end-of-candidates")
    if d.setup is not None:
        parts.append(f"DTLS setup {d.setup.value}")
    if d.fingerprints:
        algorithm, _, value = d.fingerprints[0].partition(" ")
        parts.append(f"{algorithm} {value[:11]}…")
    if not d.data_channel:
        parts.append("NO data channel section")
    return ", ".join(parts)


class _Story:
    def __init__(self, events: tuple[Event, ...], started: WebRTCUpgradeStarted) -> None:
        self.started = started
        self.all_events = events
        self.wid = started.connection_id
        self.events = of_connection(events, self.wid)
        self.initiator = started.role is UpgradeRole.INITIATOR
        self.steps: list[Step] = []
        self.findings: list[Finding] = []

    def of(self, cls: type, **match: object) -> list:
        return all_of(self.events, cls, **match)

    def one(self, cls: type, **match: object):
        return first(self.events, cls, **match)

    def step(self, key: str, title: str, status: StepStatus, detail: str, e: Event | None,
             duration_s: float | None = None) -> None:
        self.steps.append(Step(f"{self.wid}.{key}", title, status, detail, e.t_s if e else None, duration_s))

    def find(self, finding: Finding) -> None:
        if finding.code not in {f.code for f in self.findings}:
            self.findings.append(finding)

    # --- the steps ----------------------------------------------------------------------------

    def tell(self) -> None:
        s = self.started
        servers = ", ".join(s.stun_servers + s.turn_servers) or "none"
        self.step("start", f"WebRTC upgrade ({s.role.value}) over {s.relayed_connection_id}", StepStatus.INFO,
                  f"ICE servers: {servers}; policy {s.ice_policy.value}; budgets: ICE {s.ice_timeout_s:g} s, "
                  f"DTLS {s.dtls_timeout_s:g} s; STUN checks retransmit {s.stun_retransmits}× from "
                  f"{s.stun_rto_s:g} s" + _host_addresses(s), s)
        self.signaling()
        self.descriptions()
        self.candidates()
        self.ice()
        self.dtls_and_channel()
        self.result()
        self.after()
        self.steps = in_time_order(self.steps)

    def signaling(self) -> None:
        opened = self.one(SignalingStreamOpened)
        failed = self.one(SignalingFailed, stage=SignalingStage.OPEN)
        if opened is not None:
            how = (f"opened on {opened.relayed_connection_id} in {_ms(opened.duration_s)}" if not opened.inbound
                   else f"the dialer opened it on {opened.relayed_connection_id}")
            self.step("signaling", f"Signaling stream {SIGNALING_PROTOCOL}", StepStatus.OK, how, opened,
                      opened.duration_s)
        elif failed is not None:
            self.step("signaling", f"Signaling stream {SIGNALING_PROTOCOL}", StepStatus.FAILED,
                      f"{failed.error_kind.value}: {failed.error}", failed)

    def descriptions(self) -> None:
        for message, title in ((SignalingMessageType.SDP_OFFER, "SDP offer"),
                               (SignalingMessageType.SDP_ANSWER, "SDP answer")):
            d = self.one(DescriptionSignaled, message=message)
            if d is not None:
                self.step(message.value.lower(), f"{title} {'sent' if d.sent else 'received'}",
                          StepStatus.OK if d.data_channel else StepStatus.FAILED, _description(d), d)
            for bad in self.of(SignalingFailed, message=message):
                if bad.stage is not SignalingStage.OPEN:
                    self.step(message.value.lower(), title, StepStatus.FAILED,
                              f"{bad.stage.value}: {bad.error_kind.value}: {bad.error}", bad)

    def candidates(self) -> None:
        local = self.of(LocalCandidateGathered)
        remote = self.of(RemoteCandidateReceived)
        rejected = self.of(RemoteCandidateRejected)
        failed = self.one(WebRTCUpgradeFailed)
        if local or (failed is not None and failed.step is UpgradeStep.GATHERING):
            local_text = ", ".join(f"{c.address} ({c.candidate_type.value}{', added' if c.added_by_p2pdiag else ''})"
                                   for c in local) or "none"
            self.step("local-candidates", "Local ICE candidates", StepStatus.OK if local else StepStatus.FAILED,
                      f"{len(local)}: {local_text}", local[-1] if local else failed)
        if not (remote or rejected or self.one(DescriptionSignaled, sent=False)):
            return  # nothing came from the remote yet
        accepted = [r for r in remote if r.accepted]
        end = self.one(RemoteEndOfCandidates)
        remote_text = ", ".join(f"{endpoint(r.address, r.port, r.candidate_type)}"
                                f"{'' if r.accepted else ' NOT USED: ' + (r.note or '?')}" for r in remote) or "none"
        detail = f"{len(accepted)} of {len(remote)} usable: {remote_text}"
        if rejected:
            detail += f"; {len(rejected)} unreadable"
        detail += "; end-of-candidates " + (f"received ({end.source.value})" if end
                                            else "none (js-libp2p never sends one)")
        status = StepStatus.OK if accepted else (StepStatus.WARNING if self.of(CandidatePairSelected)
                                                 else StepStatus.FAILED)
        self.step("remote-candidates", "Remote ICE candidates", status, detail,
                  remote[-1] if remote else (end or self.one(DescriptionSignaled, sent=False)))

    def ice(self) -> None:
        selected = self.one(CandidatePairSelected)
        finals = self.of(CandidatePairFinal)
        changes = self.of(CandidatePairStateChanged)
        if selected is not None:
            checked = len({pair_text(c) for c in changes})
            self.step("ice", "ICE connectivity checks", StepStatus.OK,
                      f"selected {pair_text(selected)} ({selected.ice_role.value}); {checked} pair(s) checked",
                      selected)
        elif finals or changes:
            states = _count(p.state.value for p in finals)
            self.step("ice", "ICE connectivity checks", StepStatus.FAILED,
                      f"no pair selected; {len(finals)} pair(s): {states or 'none'}", finals[-1] if finals else None)

    def dtls_and_channel(self) -> None:
        dtls = self.of(DtlsStateChanged)
        if dtls:
            last = dtls[-1]
            connected = next((d for d in dtls if d.state is DtlsState.CONNECTED), None)
            if connected is not None:
                began = next((d for d in dtls if d.state is DtlsState.CONNECTING), connected)
                self.step("dtls", "DTLS handshake", StepStatus.OK,
                          f"{connected.role.value}; fingerprint matched the SDP", connected,
                          connected.t_s - began.t_s)
            else:
                self.step("dtls", "DTLS handshake", StepStatus.FAILED,
                          f"{last.state.value} ({last.role.value}){': ' + last.error if last.error else ''}", last)
        channel = (self.one(DataChannelOpened, label="init", inbound=False) if self.initiator
                   else self.one(DataChannelOpened, inbound=True))
        if channel is not None:
            how = ("opened by the dialer" if channel.inbound
                   else f"opened {_ms(channel.duration_s)} after it was created with the offer")
            self.step("channel", "First data channel", StepStatus.OK,
                      f"'{channel.label}' (SCTP stream {channel.channel_id}) {how}", channel)

    def result(self) -> None:
        ok = self.one(WebRTCUpgradeSucceeded)
        failed = self.one(WebRTCUpgradeFailed)
        if ok is not None:
            self.step("upgrade", "WebRTC connection", StepStatus.OK, f"up {_ms(ok.duration_s)} after the upgrade began",
                      ok)
        elif failed is not None:
            self.step("upgrade", "WebRTC connection", StepStatus.FAILED,
                      f"failed at {failed.step.value} after {_ms(failed.duration_s)}: {failed.reason}", failed)
            self.diagnose_failure(failed)
        else:
            self.step("upgrade", "WebRTC connection", StepStatus.WARNING, "the run ended during the attempt", None)

    def after(self) -> None:
        pings = all_of(self.events, PingCompleted, path=Path.WEBRTC)
        ping_failures = all_of(self.events, PingFailed, path=Path.WEBRTC)
        served = self.of(PingServed)
        if pings:
            self.step("ping", "Ping over the WebRTC connection", StepStatus.OK,
                      f"round trip {pings[0].rtt_s * 1000:.1f} ms "
                      f"({count(self.all_events, PingCompleted, connection_id=self.wid, path=Path.WEBRTC)} answered)",
                      pings[0])
        elif ping_failures:
            pf = ping_failures[0]
            self.step("ping", "Ping over the WebRTC connection", StepStatus.FAILED,
                      f"{pf.error_kind.value}: {pf.error}", pf)
        if served:
            self.step("served", "Pings answered over WebRTC", StepStatus.OK, f"{served[-1].count}", served[-1])
        closed = self.one(WebRTCConnectionClosed)
        ok = self.one(WebRTCUpgradeSucceeded)
        if closed is not None:
            who = {Closer.LOCAL: "this side", Closer.REMOTE: "the remote"}.get(closed.closer, "an unknown side")
            age = _ms(closed.age_s) if closed.age_s < 1 else f"{closed.age_s:.1f} s"
            self.step("closed", "WebRTC connection ended", StepStatus.INFO,
                      f"closed by {who} {age} after it came up: {closed.reason}; "
                      f"{closed.streams_opened} stream(s) opened, {closed.streams_accepted} accepted", closed)
            if (not self.initiator and ok is not None and closed.closer is Closer.REMOTE
                    and closed.streams_accepted == 0 and closed.age_s <= ABANDONED_WITHIN_S):
                self.find(W.upgrade_abandoned(f"the dialer closed the WebRTC connection {closed.age_s:.1f} s "
                                              "after it came up, without opening a single stream"))

    # --- why it failed ------------------------------------------------------------------------

    def diagnose_failure(self, failed: WebRTCUpgradeFailed) -> None:
        bad_messages = [f for f in self.of(SignalingFailed)
                        if f.stage in (SignalingStage.DECODE, SignalingStage.UNEXPECTED, SignalingStage.APPLY)]
        remote_end = next((e for e in self.of(SignalingStreamEnded) if e.closer is Closer.REMOTE), None)
        remote_reset = remote_end if remote_end is not None and remote_end.reset else None
        step = failed.step
        if (not self.initiator and remote_end is not None and remote_end.t_s <= failed.t_s
                and step in (UpgradeStep.ICE, UpgradeStep.DTLS, UpgradeStep.CHANNEL)):
            # The dialer left while this side was still connecting: say so, then why it could not connect.
            ended = "reset" if remote_end.reset else "closed"
            self.find(W.upgrade_abandoned(f"the dialer {ended} the signaling stream at "
                                          f"t={remote_end.t_s:.2f} s, while this side was at the {step.value} step "
                                          f"({remote_end.reason})"))
            if failed.error_kind is ErrorKind.RESET:
                return
        if step is UpgradeStep.SIGNALING and failed.error_kind is ErrorKind.PROTOCOL_UNSUPPORTED:
            self.find(W.signaling_unsupported(self.started.remote_peer_id, failed.reason))
            return
        if bad_messages and step in (UpgradeStep.SIGNALING, UpgradeStep.OFFER, UpgradeStep.ANSWER):
            self.find(W.signaling_malformed(bad_messages))
            return
        if failed.error_kind is ErrorKind.RESET and (remote_reset is not None or step in (
                UpgradeStep.SIGNALING, UpgradeStep.OFFER, UpgradeStep.ANSWER)):
            self.find(W.signaling_reset(step, failed.reason, self.initiator))
            return
        if step in (UpgradeStep.SIGNALING, UpgradeStep.OFFER, UpgradeStep.ANSWER):
            if failed.error_kind is ErrorKind.TIMEOUT:
                self.find(W.signaling_timeout(step, failed.reason, self.started.signaling_timeout_s))
            else:
                self.find(W.signaling_reset(step, failed.reason, self.initiator))
            return
        if step is UpgradeStep.GATHERING:
            self.find(W.no_local_candidates(failed.reason, self.started))
            self.diagnose_network()
            return
        if step is UpgradeStep.ICE:
            self.diagnose_ice(failed, bad_messages)
            return
        if step is UpgradeStep.DTLS:
            dtls = [d for d in self.of(DtlsStateChanged) if d.state is DtlsState.FAILED]
            self.find(W.dtls_failed(failed.reason, dtls[-1].error if dtls else None))
            return
        if step is UpgradeStep.CHANNEL:
            self.find(W.channel_not_opened(failed.reason, self.initiator))

    def diagnose_network(self) -> None:
        """The network cause, beside the step's own finding (diagnosis/network.py)."""
        for finding in network_findings(self.all_events, self.started):
            self.find(finding)

    def diagnose_ice(self, failed: WebRTCUpgradeFailed, bad_messages: list[SignalingFailed]) -> None:
        remote = self.of(RemoteCandidateReceived)
        accepted = [r for r in remote if r.accepted]
        finals = self.of(CandidatePairFinal)
        learned = [p for p in finals if p.remote_type is CandidateType.PRFLX]
        if not accepted and not learned:
            mdns = [r for r in remote if r.mdns]
            if mdns and len(mdns) == len(remote):
                self.find(W.mdns_unresolved(mdns))
            else:
                self.find(W.no_remote_candidates(remote, self.of(RemoteCandidateRejected), bad_messages))
            return
        self.find(W.ice_failed(failed, finals, self.started, self.initiator,
                               refused_here=self.one(IceChecksRefused) is not None))
        self.diagnose_network()


def _host_addresses(s: WebRTCUpgradeStarted) -> str:
    if s.host_addresses is None:
        return ""
    only = ", ".join(s.host_addresses) or "none"
    return f"; host candidates only on: {only}" + (" (plus 127.0.0.1)" if s.loopback_candidates else "")


def _count(values: object) -> str:
    counts: dict[str, int] = {}
    for v in values:  # type: ignore[attr-defined]
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def upgrade_story(events: tuple[Event, ...], relayed_connection_id: str) -> UpgradeStory:
    started = first(events, WebRTCUpgradeStarted, relayed_connection_id=relayed_connection_id)
    if started is None:
        return UpgradeStory(attempted=False, upgraded=False)
    story = _Story(events, started)
    story.tell()
    ok = story.one(WebRTCUpgradeSucceeded)
    failed = story.one(WebRTCUpgradeFailed)
    if ok is not None:
        summary = f"upgraded to WebRTC in {_ms(ok.duration_s)}"
    elif failed is not None:
        summary = f"WebRTC upgrade failed at {failed.step.value}: {failed.reason}"
    else:
        summary = "the WebRTC upgrade did not finish before the run ended"
    selected = story.one(CandidatePairSelected)
    facts: dict[str, object] = {"webrtc_connection_id": story.wid, "webrtc_role": started.role.value}
    if selected is not None:
        facts["webrtc_pair"] = pair_text(selected)
    return UpgradeStory(attempted=True, upgraded=ok is not None, connection_id=story.wid, role=started.role,
                        summary=summary, steps=tuple(story.steps),
                        findings=tuple(by_severity(story.findings)), facts=facts)
