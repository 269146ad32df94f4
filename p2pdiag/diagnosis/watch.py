"""Diagnosis of a `watch` trace: a history of the fleet, each fault with when it began, how long it
lasted (or that it was still open at the end) and its evidence.

The live tracker (p2pdiag/watch/tracker.py) named every change as it happened and the trace keeps
them (`watch.changed`); this pairs each fault with the change that ended it, counts each target's
probes, and says what is wrong at the end. Live and offline give the same verdict: the live
command builds it from its own trace's events.
"""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.facts import Fault, TargetHistory, WatchFacts, iso_seconds
from p2pdiag.diagnosis.model import Finding, Outcome, Severity, Step, StepStatus, Verdict
from p2pdiag.trace.events import Event, RunInterrupted
from p2pdiag.trace.events.watch import Changed, Probed, TargetListed, WatchStarted
from p2pdiag.trace.file import Trace
from p2pdiag.watch.tracker import SLOT, ChangeKind

SLOT_OF = {kind.value: slot for kind, slot in SLOT.items()}  # a fault ends at the next change of its slot

CODE = {
    ChangeKind.PROBE_FAILED: Code.PROBE_FAILED,
    ChangeKind.RELAY_HOP_WITHDRAWN: Code.RELAY_HOP_WITHDRAWN,
    ChangeKind.RESERVATION_LOST: Code.RESERVATION_LOST,
    ChangeKind.PEER_DOWN: Code.PEER_DOWN,
    ChangeKind.PEER_NOT_LISTENING: Code.PEER_NOT_LISTENING,
    ChangeKind.HANDSHAKE_FAILING: Code.HANDSHAKE_FAILING,
    ChangeKind.ADDRESS_DOWN: Code.ADDRESS_DOWN,
    ChangeKind.ADDRESS_VANISHED: Code.ADDRESS_VANISHED,
    ChangeKind.RELAY_CUT_DURATION: Code.RELAY_CUT_DURATION,
    ChangeKind.RELAY_CUT_DATA: Code.RELAY_CUT_DATA,
    ChangeKind.RELAY_CUT_UNEXPLAINED: Code.RELAY_CUT_UNEXPLAINED,
    ChangeKind.CIRCUIT_ADDRESS_MISSING: Code.CIRCUIT_ADDRESS_MISSING,
    ChangeKind.CANARY_LOSS: Code.CANARY_LOSS,
    ChangeKind.SUBSCRIPTION_LOST: Code.SUBSCRIPTION_LOST,
    ChangeKind.AGENT_CHANGED: Code.AGENT_CHANGED,
    ChangeKind.RELAY_LIMITS_CHANGED: Code.RELAY_LIMITS_CHANGED,
    ChangeKind.UPGRADE_CHANGED: Code.UPGRADE_CHANGED,
    ChangeKind.WATCH_STARVED: Code.WATCH_STARVED,
}

# (title with {n} faults, advice), per fault kind
WORDS: dict[Code, tuple[str, str]] = {
    Code.PROBE_FAILED: ("{n} probe failure(s): a relay, the upgrade or the canaries stopped working",
                        "The evidence names the phase that failed. `p2pdiag dial`/`relay-check` on the target "
                        "tells more now; the trace keeps every probe."),
    Code.RELAY_HOP_WITHDRAWN: ("A relay answers but does not offer Circuit Relay v2 HOP",
                               "The node answers, but its relay service is off. go-libp2p runs it only while "
                               "AutoNAT finds the node publicly reachable (ForceReachabilityPublic on a relay known "
                               "to be public); otherwise check its configuration (go-libp2p EnableRelayService, "
                               "js circuitRelayServer)."),
    Code.RESERVATION_LOST: ("{n} reservation(s) on a relay lost",
                            "A relay restart drops every reservation; clients must reserve again. Fleet nodes "
                            "that do not (js-libp2p #3601) stay unreachable through it: look for "
                            "circuit-address-missing on them."),
    Code.PEER_DOWN: ("{n} peer(s) unreachable by every path",
                     "No address, direct or relayed, completed identify: the process is down or hung, or "
                     "its network is. Check the process and its host first."),
    Code.PEER_NOT_LISTENING: ("{n} peer(s) stopped listening while their process lived",
                              "Direct dials are refused or unanswered while the node still answers through a "
                              "relay: its listener closed (a transport error the app did not handle, a listener "
                              "the app stopped), or, when unanswered, a firewall or a lost port forward now drops "
                              "the traffic. Restart the node and look in its logs for the listener's error."),
    Code.HANDSHAKE_FAILING: ("{n} address(es) accept connections but no handshake completes",
                             "Something accepts the transport connection but Noise/yamux never completes: an "
                             "overloaded or hung node, or another program (a proxy) on the port."),
    Code.ADDRESS_DOWN: ("{n} address(es) stopped answering",
                        "Per address: the evidence says how the dial failed. A relayed path that fails with "
                        "NO_RESERVATION means the node holds no reservation on that relay."),
    Code.ADDRESS_VANISHED: ("{n} address(es) vanished from a peer's announced addresses",
                            "The node no longer announces them in identify: a listener removed, an interface "
                            "gone, an announce filter. Peers that learned the old addresses will fail to dial."),
    Code.CIRCUIT_ADDRESS_MISSING: ("{n} peer(s) no longer announce a /p2p-circuit address",
                                   "The node holds no relay reservation, so browsers and NATed peers cannot reach "
                                   "it. After a relay restart js-libp2p may never reserve again (#3601), even "
                                   "once reconnected to the relay; a refresh can also drop the address (#3571). "
                                   "Restart the node; in js-libp2p also listen on a plain /p2p-circuit address."),
    Code.RELAY_CUT_DURATION: ("A relay cut circuits at its duration limit",
                              "Every relayed connection through it ends that long after it opened: apps that "
                              "stay on the relay (no direct upgrade) reconnect in a loop. Raise the relay's "
                              "duration limit, or upgrade to a direct connection before it bites."),
    Code.RELAY_CUT_DATA: ("A relay cut circuits at its data limit",
                          "Every relayed connection through it ends after that many bytes: identify, ping and "
                          "signaling count. Raise the relay's data limit, or upgrade before it bites."),
    Code.RELAY_CUT_UNEXPLAINED: ("A relay cut circuits, and neither announced limit explains it",
                                 "The relay ended a held circuit before its announced limits: an overloaded "
                                 "relay, a restart, or limits it enforces but does not announce."),
    Code.CANARY_LOSS: ("GossipSub canaries did not all cross the mesh",
                       "A node between the two light peers does not forward: a validator rejecting or ignoring "
                       "messages, a mesh that lost its peers, scoring that pruned a node. Check the nodes' "
                       "gossipsub_mesh_peer_count and validation results."),
    Code.SUBSCRIPTION_LOST: ("{n} watched node(s) no longer seen subscribed to the topic",
                             "The node left the topic, or the light peers lost sight of it (not connected)."),
    Code.AGENT_CHANGED: ("A node's agent version changed", "A restart with another version, or another program "
                                                           "now answers on the address. Expected after a deploy."),
    Code.RELAY_LIMITS_CHANGED: ("A relay now announces other limits",
                                "Expected after a configuration change; otherwise check the relay's resources."),
    Code.UPGRADE_CHANGED: ("The WebRTC upgrade's outcome changed", "Each probe's full verdict is in the trace; "
                                                                    "`p2pdiag dial` shows the current one."),
    Code.WATCH_STARVED: ("p2pdiag was held while {n} probe(s) timed out: those probes were not counted",
                         "The machine watch runs on is overloaded (CPU, or the process throttled): give watch a "
                         "core, fewer targets, or a longer interval; the targets' health during that time is "
                         "unknown."),
}


def _span(f: Fault, base: float) -> str:
    start = iso_seconds(base + f.began_t_s)[11:19]
    if f.ended_t_s is None:
        return f"from {start}, still open at the end"
    return f"{start}–{iso_seconds(base + f.ended_t_s)[11:19]} ({f.ended_t_s - f.began_t_s:.0f} s)"


MAX_FAULTS_KEPT = 2000  # a flapping fleet over days: the oldest ended faults give way, and are counted


class History:
    """A watch's history, built one event at a time: what a live watch keeps instead of its events
    (memory bounded by the number of targets and MAX_FAULTS_KEPT), and what `analyze` builds from a
    trace file. Both then give the same verdict."""

    def __init__(self) -> None:
        self.started: WatchStarted | None = None
        self.listed: dict[tuple[str, str], TargetListed] = {}
        self.counts: dict[tuple[str, str], list[int]] = {}
        self.last_ok: dict[tuple[str, str], bool] = {}
        self.open: dict[tuple[str, str, str, str | None], Fault] = {}
        self.ended: list[Fault] = []
        self.news: list[Fault] = []
        self.dropped = 0
        self.stopped = False
        self.end = 0.0

    def _keep(self, kept: list[Fault], fault: Fault) -> None:
        kept.append(fault)
        if len(kept) > MAX_FAULTS_KEPT:
            del kept[0]
            self.dropped += 1

    def add(self, e: Event) -> None:
        self.end = max(self.end, e.t_s)
        if isinstance(e, Probed):
            if e.starved_s is not None:  # says nothing of the target (the tracker named it once, as news)
                return
            c = self.counts.setdefault((e.module, e.target), [0, 0])
            c[0] += 1
            c[1] += e.ok
            self.last_ok[(e.module, e.target)] = e.ok
        elif isinstance(e, Changed):
            slot = SLOT_OF.get(e.change)
            if slot is not None:
                key = (slot, e.module, e.target, e.subject)
                began = self.open.pop(key, None)
                if began is not None:  # whatever the slot became, its fault ended here
                    self._keep(self.ended, Fault(began.change, began.module, began.target, began.subject,
                                                 began.began_t_s, e.t_s, began.detail))
                if e.bad:
                    self.open[key] = Fault(e.change, e.module, e.target, e.subject, e.t_s, None, e.detail)
            else:
                self._keep(self.news, Fault(e.change, e.module, e.target, e.subject, e.t_s, e.t_s, e.detail))
        elif isinstance(e, TargetListed):
            self.listed[(e.module, e.target)] = e
            self.counts.setdefault((e.module, e.target), [0, 0])
        elif isinstance(e, WatchStarted):
            self.started = e
        elif isinstance(e, RunInterrupted):
            self.stopped = True

    def facts(self) -> WatchFacts:
        faults = sorted((*self.ended, *self.open.values()), key=lambda f: f.began_t_s)
        targets = tuple(
            TargetHistory(module, target, self.listed[(module, target)].what if (module, target) in self.listed
                          else "", c[0], c[1], self.last_ok.get((module, target)))
            for (module, target), c in self.counts.items())
        started = self.started
        return WatchFacts(started.started_unix_s if started else 0.0, self.end, started.shard if started else None,
                          targets, tuple(faults), tuple(self.news), self.dropped)


def history(events: tuple[Event, ...]) -> History:
    h = History()
    for e in events:
        h.add(e)
    return h


def diagnose_watch(trace: Trace) -> Verdict:
    return verdict_of(history(trace.events))


def verdict_of(h: History) -> Verdict:
    facts = h.facts()
    base = facts.started_unix_s
    steps = []
    for t in facts.targets:
        mine = [f for f in facts.faults if (f.module, f.target) == (t.module, t.target)]
        open_now = [f for f in mine if f.ended_t_s is None]
        status = (StepStatus.FAILED if open_now else StepStatus.WARNING if mine
                  else StepStatus.SKIPPED if not t.probes else StepStatus.OK)
        share = f", {100 * t.ok / t.probes:.1f} % ok" if t.probes else ""
        detail = f"{t.probes} probe(s){share}" + (f"; {len(mine)} fault(s), {len(open_now)} open" if mine else "")
        steps.append(Step(f"{t.module}.{t.target}", f"{t.module} {t.target}" + (f" ({t.what})" if t.what else ""),
                          status, detail))
    by_code: dict[Code, list[Fault]] = {}
    for f in (*facts.faults, *facts.news):
        by_code.setdefault(CODE[ChangeKind(f.change)], []).append(f)
    findings = []
    for code, items in by_code.items():
        title, advice = WORDS[code]
        is_news = code in (Code.AGENT_CHANGED, Code.RELAY_LIMITS_CHANGED, Code.UPGRADE_CHANGED, Code.WATCH_STARVED)
        still_open = [f for f in items if f.ended_t_s is None]
        severity = Severity.INFO if is_news else Severity.ERROR if still_open else Severity.WARNING
        evidence = tuple(
            f"{f.module} {f.target}" + (f" [{f.subject}]" if f.subject else "") + ": "
            + (iso_seconds(base + f.began_t_s)[11:19] if is_news else _span(f, base)) + f": {f.detail}"
            for f in items)
        findings.append(Finding(code=code, severity=severity, title=title.format(n=len(items)), evidence=evidence,
                                advice=advice, data={"faults": len(items), "open": len(still_open)}))
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: order[f.severity])
    open_faults = [f for f in facts.faults if f.ended_t_s is None]
    ended = sum(1 for f in facts.faults if f.ended_t_s is not None)
    probes = sum(t.probes for t in facts.targets)
    if open_faults:
        named = ", ".join(f"{f.change} on {f.target}" for f in open_faults[:3])
        more = f" and {len(open_faults) - 3} more" if len(open_faults) > 3 else ""
        headline = f"{len(open_faults)} fault(s) open when the watch ended: {named}{more}"
    elif probes:
        headline = (f"All {len(facts.targets)} target(s) healthy at the end of {facts.ended_t_s:.0f} s "
                    f"({probes} probes)" + (f"; {ended} fault(s) came and went" if ended else ""))
    else:
        headline = "No probe completed before the watch ended"
    stopped = h.stopped
    if stopped and not probes:
        headline += " (stopped early)"
    if probes:
        outcome = Outcome.FLEET_PROBLEM if open_faults else Outcome.FLEET_OK
    else:  # nothing was seen: not a healthy fleet
        outcome = Outcome.INTERRUPTED if stopped else Outcome.FLEET_PROBLEM
    return Verdict("watch", outcome, headline, tuple(steps), tuple(findings), facts)
