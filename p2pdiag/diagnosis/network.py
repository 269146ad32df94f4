"""The network cause of a failed ICE attempt, read from candidates and pairs the way people debug ICE.

Pure: the events of one upgrade attempt in, findings out. `network_findings` is called by
diagnosis/upgrade.py where it judges an ICE (or gathering) failure; what it finds is more specific
than `webrtc-ice-failed` and comes beside it.

What the checks' own sends tell: a send the OS refused at once with EPERM (`webrtc.send_failed`)
was dropped by this host's own packet filter; when every pair's sends were refused and none went
out (`webrtc.checks_refused`, which ended ICE there), UDP is blocked on this host, certainly, and
nothing the peer, a NAT or the path does can look like it (they all let the send leave).

What the candidates tell (RFC 8445 section 5.1.1, RFC 4787 for NAT behaviour):
- STUN configured but no srflx candidate, and gathering ended at its bound with the STUN requests
  unanswered (`webrtc.ice_server_queried` no_answer, `webrtc.gathering_ended` server_bound): the
  STUN request got no answer. With the relay working over TCP, UDP is what is blocked. A server that
  refused (an error response) or a name that did not resolve is not blocked UDP.
- The remote's candidates: only host candidates on private addresses means its STUN got no answer
  (or it has no STUN server): nothing public to check against.
- One local base mapped to different public ports for different STUN servers: the NAT maps each
  destination anew (address-and-port-dependent, "symmetric"). A peer-reflexive candidate on the
  remote's public address but another port than its srflx says the same of the remote's NAT.
  p2pdiag asks every STUN server from each socket and sends one srflx per server (each its own
  foundation), so a peer given two servers shows its mapping in its candidates: one base, one
  public port for both servers is endpoint-independent. One STUN server gives one mapping, which
  cannot show this.
- A NAT that changed the port of the STUN mapping hints at random port allocation, which mostly
  goes with symmetric mapping; a kept port hints at the opposite. Hints, not proof.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from p2pdiag.diagnosis.findings import network as N
from p2pdiag.diagnosis.limits import fmt_bytes, fmt_seconds, is_js_agent, read_duration
from p2pdiag.diagnosis.model import Confidence, Finding
from p2pdiag.diagnosis.nat import EIM, NO_UDP, UNTESTED, NatBehaviour, nat_behaviour
from p2pdiag.diagnosis.nat import address_port as _ep
from p2pdiag.diagnosis.query import all_of, first, of_connection
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairState,
    CandidateType,
    CircuitSecured,
    DescriptionSignaled,
    Event,
    GatheringEnd,
    HopStatusReceived,
    IceChecksRefused,
    IceGatheringEnded,
    IceGatheringState,
    IceGatheringStateChanged,
    IcePolicy,
    IceServerKind,
    IceServerOutcome,
    IceServerQueried,
    IdentifyCompleted,
    LocalCandidateGathered,
    NatTestCompleted,
    Path,
    PingCompleted,
    RemoteCandidateReceived,
    StopConnectReceived,
    Subject,
    UdpSendFailed,
    UpgradeRole,
    UpgradeStep,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
)
from p2pdiag.wire.stun import from_event

GATHERING_WAITED_S = 1.0  # STUN answers within milliseconds; this long means requests went unanswered
ANSWER_WAITED_S = 2.5  # an answer this late from a peer that gathers before answering: its STUN timed out

# Mapping verdicts, strongest first.
SYMMETRIC = "symmetric"  # seen: one base, different public ports per destination
PORT_CHANGED = "port-changed"  # hint: the NAT gave another port than the base's
PORT_KEPT = "port-kept"  # hint: the NAT kept the base's port
UNKNOWN = "unknown"  # no srflx candidate
EIM_SEEN = "endpoint-independent"  # measured by the NAT probe: one mapping for every destination


@dataclass(frozen=True, slots=True)
class Mapping:
    verdict: str
    evidence: tuple[str, ...]
    stun_answers: int  # distinct srflx mappings seen for one base (how many STUN servers answered)


_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
    "198.18.0.0/15",  # benchmarking (RFC 2544): the lab's LANs
    "169.254.0.0/16", "127.0.0.0/8",
    "fc00::/7", "fe80::/10", "::1/128",
))


def is_private(address: str) -> bool:
    """Not reachable from another network. Documentation ranges (TEST-NET) count as public: the lab's
    public network is one, although Python's `is_private` says otherwise."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address.endswith(".local")  # an mDNS name hides a local address
    return any(ip.version == n.version and ip in n for n in _PRIVATE)


def mapping_from_srflx(srflx: Iterable[LocalCandidateGathered | RemoteCandidateReceived],
                       prflx_seen: Iterable[tuple[str, int]] = ()) -> Mapping:
    """The NAT's mapping behaviour as far as these reflexive candidates (of one side) show it.

    `prflx_seen`: (address, port) the other side learned from this side's checks (peer
    reflexive); the same public address with another port than the srflx one is a second mapping.
    """
    srflx = [c for c in srflx if c.candidate_type is CandidateType.SRFLX]
    if not srflx:
        return Mapping(UNKNOWN, ("no srflx candidate: no STUN answer to read a mapping from",), 0)
    by_base: dict[tuple[str | None, int | None], set[tuple[str, int]]] = {}
    servers: dict[tuple[str | None, int | None], set[str]] = {}  # foundations: one per STUN server
    for c in srflx:
        by_base.setdefault((c.related_address, c.related_port), set()).add((c.address, c.port))
        servers.setdefault((c.related_address, c.related_port), set()).add(c.foundation)
    for (base_addr, base_port), mapped in by_base.items():
        if len(mapped) > 1 and base_addr:
            seen = ", ".join(_ep(a, p) for a, p in sorted(mapped))
            why = f"base {_ep(base_addr, base_port)} mapped to {seen} for different STUN servers"
            return Mapping(SYMMETRIC, (why,), len(mapped))
    public = {(c.address, c.port) for c in srflx}
    for address, port in prflx_seen:
        same_ip = sorted(p for a, p in public if a == address)
        if same_ip and port not in same_ip:
            why = (f"STUN saw {_ep(address, same_ip[0])}, but the checks came from {_ep(address, port)} "
                   "(peer reflexive): a new port for a new destination")
            return Mapping(SYMMETRIC, (why,), 1)
    for (base_addr, base_port), mapped in by_base.items():
        asked = len(servers[(base_addr, base_port)])
        if base_addr and base_port and asked > 1:
            (address, port), = mapped
            why = f"base {_ep(base_addr, base_port)} mapped to {_ep(address, port)} for {asked} STUN servers alike"
            return Mapping(EIM_SEEN, (why,), asked)
    c = srflx[0]
    answers = max(len(m) for m in by_base.values())
    if not c.related_address or not c.related_port:
        return Mapping(UNKNOWN, (f"srflx {_ep(c.address, c.port)} without its base (raddr)",), answers)
    kept = c.port == c.related_port
    why = (f"base {_ep(c.related_address, c.related_port)} mapped to {_ep(c.address, c.port)}: "
           + ("the NAT kept the port" if kept else "the NAT chose another port"))
    return Mapping(PORT_KEPT if kept else PORT_CHANGED, (why,), answers)


@dataclass(frozen=True, slots=True)
class _View:
    """What one attempt's events say about the network, gathered once."""

    started: WebRTCUpgradeStarted
    failed: WebRTCUpgradeFailed | None
    local: tuple[LocalCandidateGathered, ...]
    remote: tuple[RemoteCandidateReceived, ...]
    finals: tuple[CandidatePairFinal, ...]
    gathering_s: float | None  # from gathering to complete
    answer_wait_s: float | None  # from our offer/answer... to the remote's description, initiator only
    relayed_ok: bool  # a ping answered over the relayed connection
    remote_agent: str | None
    limit: tuple[int | None, int | None, float | None, str | None]  # duration, data, circuit start, relay agent
    nat: NatBehaviour | None  # this side's NAT, when the run probed it (dial with two STUN servers)
    queries: tuple[IceServerQueried, ...]  # each STUN binding and TURN allocation while gathering
    gathered: IceGatheringEnded | None  # what ended gathering (traces from before it: None)
    send_failures: tuple[UdpSendFailed, ...] = ()  # checks' sends the OS failed at once
    checks_refused: IceChecksRefused | None = None  # every pair's sends refused here: ICE ended there

    @property
    def side(self) -> str:
        return "the dialer's" if self.started.role is UpgradeRole.INITIATOR else "the listener's"

    @property
    def other(self) -> str:
        return "the listener" if self.started.role is UpgradeRole.INITIATOR else "the dialer"

    def local_of(self, kind: CandidateType) -> list[LocalCandidateGathered]:
        return [c for c in self.local if c.candidate_type is kind]

    def remote_of(self, kind: CandidateType) -> list[RemoteCandidateReceived]:
        return [c for c in self.remote if c.candidate_type is kind]


def _view(events: tuple[Event, ...], attempt: tuple[Event, ...], started: WebRTCUpgradeStarted) -> _View:
    gathering = first(attempt, IceGatheringStateChanged, state=IceGatheringState.GATHERING)
    complete = first(attempt, IceGatheringStateChanged, state=IceGatheringState.COMPLETE)
    sent = first(attempt, DescriptionSignaled, sent=True)
    got = first(attempt, DescriptionSignaled, sent=False)
    answer_wait = (got.t_s - sent.t_s if started.role is UpgradeRole.INITIATOR and sent and got
                   and got.t_s >= sent.t_s else None)
    relayed = started.relayed_connection_id
    secured = first(events, CircuitSecured, connection_id=relayed)
    peer = first(events, IdentifyCompleted, subject=Subject.PEER, connection_id=relayed)
    hop = None
    if secured is not None and not secured.inbound:
        hop = first(events, HopStatusReceived, relay=secured.relay, status_name="OK")
    stop = first(events, StopConnectReceived, connection_id=relayed)
    relay_identify = first(events, IdentifyCompleted, subject=Subject.RELAY)
    limit_src = hop or stop
    nat_tests = all_of(events, NatTestCompleted)
    limit = (limit_src.announced_duration_s if limit_src else None,
             limit_src.announced_data_bytes if limit_src else None,
             (secured.t_s - secured.duration_s) if secured else None,
             relay_identify.agent_version if relay_identify else None)
    return _View(
        started=started,
        failed=first(attempt, WebRTCUpgradeFailed),
        local=tuple(c for c in all_of(attempt, LocalCandidateGathered) if not c.added_by_p2pdiag),
        remote=tuple(all_of(attempt, RemoteCandidateReceived, accepted=True)),
        finals=tuple(all_of(attempt, CandidatePairFinal)),
        gathering_s=(complete.t_s - gathering.t_s) if gathering and complete else None,
        answer_wait_s=answer_wait,
        relayed_ok=bool(all_of(events, PingCompleted, path=Path.RELAYED, connection_id=relayed)),
        remote_agent=peer.agent_version if peer else None,
        limit=limit,
        nat=nat_behaviour([from_event(e) for e in nat_tests]) if nat_tests else None,
        queries=tuple(all_of(attempt, IceServerQueried)),
        gathered=first(attempt, IceGatheringEnded),
        send_failures=tuple(all_of(attempt, UdpSendFailed)),
        checks_refused=first(attempt, IceChecksRefused),
    )


def network_findings(events: tuple[Event, ...], started: WebRTCUpgradeStarted) -> list[Finding]:
    """Findings that name the network cause of this attempt's failure at gathering or ICE; [] otherwise."""
    attempt = tuple(of_connection(events, started.connection_id))
    v = _view(events, attempt, started)
    if v.failed is None or v.failed.step not in (UpgradeStep.GATHERING, UpgradeStep.ICE):
        return []
    out: list[Finding] = []
    here_blocked = _udp_blocked_here(v)
    if here_blocked is not None:
        out.append(here_blocked)
    there_blocked = _udp_blocked_remote(v) if here_blocked is None else None
    if there_blocked is not None:
        out.append(there_blocked)
    out += _turn(v)
    if here_blocked is None and there_blocked is None:
        out += _mappings(v)
    return out


# --- UDP blocked ------------------------------------------------------------------------------------


def _udp_blocked_here(v: _View) -> Finding | None:
    refused = _refused_here(v)
    if refused is not None:
        return refused
    s = v.started
    interfaces = v.local_of(CandidateType.HOST)
    if not s.stun_servers or v.local_of(CandidateType.SRFLX) or not interfaces or s.ice_policy is IcePolicy.RELAY:
        return None
    stun = [q for q in v.queries if q.server_kind is IceServerKind.STUN]
    stun_refused = bool(stun) and all(q.send_refused for q in stun)
    if stun_refused and not v.finals:  # no check ran: the refused STUN requests are all there is
        return _stun_refused_here(v, stun, interfaces)
    if any(q.outcome is not IceServerOutcome.NO_ANSWER and not q.send_refused for q in stun):
        return None  # a server refused, or a name did not resolve: not UDP dropped on the way
    evidence = [f"STUN server(s) {', '.join(s.stun_servers)} configured; host candidate(s) "
                + ", ".join(_ep(c.address, c.port) for c in interfaces[:3]) + "; no srflx candidate"]
    waited = v.gathering_s is not None and v.gathering_s >= GATHERING_WAITED_S
    bound = v.gathered.bound_s if v.gathered is not None and v.gathered.ended_by is GatheringEnd.SERVER_BOUND else None
    if stun and bound is not None:
        waited = True
        sockets = len({(q.local_address, q.local_port) for q in stun})
        evidence.append(f"{len(stun)} STUN request(s) from {sockets} local socket(s) got no answer within "
                        f"{bound:g} s: gathering hit that timeout and ended ({v.gathered.duration_s:.2f} s)")
    elif v.gathering_s is not None and not stun_refused:
        evidence.append(f"gathering took {v.gathering_s:.1f} s"
                        + (": the STUN requests went unanswered until aioice gave up" if waited
                           else " (a STUN answer would have come in milliseconds)"))
    if stun_refused:  # but not every check: a rule against STUN's port, maybe, not against all UDP
        evidence.append(f"this host refused to send the {len(stun)} STUN request(s) ({stun[0].error}), "
                        "though not every connectivity check")
    if s.turn_servers and not v.local_of(CandidateType.RELAY):
        evidence.append(f"no TURN allocation either ({s.turn_servers[0]})")
    remote_srflx = v.remote_of(CandidateType.SRFLX)
    if remote_srflx:
        evidence.append(f"{v.other} got its own srflx candidate {_ep(remote_srflx[0].address, remote_srflx[0].port)}"
                        ": the STUN server answers others")
    if v.relayed_ok:
        evidence.append("the relayed connection (TCP) carried pings")
    probe_silent = v.nat is not None and v.nat.mapping == NO_UDP
    if probe_silent:
        evidence.append("the NAT probe's STUN tests got no answer either")
    confidence = Confidence.LIKELY if (waited or remote_srflx or probe_silent or stun_refused) \
        else Confidence.POSSIBLE
    return N.udp_blocked_local(v.side, evidence, confidence,
                               {"stun_bound_s": bound, "stun_unanswered": len(stun)} if bound is not None else {})


def _refused_here(v: _View) -> Finding | None:
    """udp-blocked-local, certain: this host refused every pair's sends (none left it)."""
    r = v.checks_refused
    if r is None or r.refused_pairs < 1 or r.refused_pairs + r.unroutable_pairs != r.pairs:
        return None
    if any(p.state is CandidatePairState.SUCCEEDED for p in v.finals):
        return None
    refusals = [e for e in v.send_failures if e.refused]
    said = f" ({refusals[0].error})" if refusals else ""
    evidence = [f"this host refused every UDP send of the connectivity checks: sendto() failed at once with "
                f"{r.errno_name}{said}, {r.sends_refused} send(s) on {r.refused_pairs} pair(s); none left the machine",
                f"{r.errno_name} on a send is this host's own packet filter refusing it (an nftables or iptables drop "
                "or reject on output, or a cgroup egress rule): a peer, a NAT or a firewall on the way cannot cause it"]
    evidence += [f"{_ep(e.local_address, e.local_port)} → {_ep(e.remote_address, e.remote_port)}: {e.errno_name}"
                 for e in refusals[:3]]
    if len(refusals) > 3:
        evidence.append(f"… and {len(refusals) - 3} more")
    if r.unroutable_pairs:
        others = sorted({e.errno_name for e in v.send_failures if not e.refused})
        evidence.append(f"{r.unroutable_pairs} other pair(s) had no route from their socket ({', '.join(others)})")
    evidence.append(f"ICE ended {r.after_s:.2f} s after the first check, once every pair's check and its "
                    f"retransmit were refused, instead of waiting out its {v.started.ice_timeout_s:g} s budget")
    s = v.started
    stun = [q for q in v.queries if q.server_kind is IceServerKind.STUN]
    if stun and all(q.send_refused for q in stun):
        evidence.append(f"this host refused to send the {len(stun)} STUN request(s) too, while gathering")
    elif s.stun_servers and not v.local_of(CandidateType.SRFLX):
        evidence.append(f"no srflx candidate either: the STUN server(s) {', '.join(s.stun_servers)} got no answer")
    if v.relayed_ok:
        evidence.append("the relayed connection (TCP) carried pings")
    return N.udp_blocked_local(v.side, evidence, Confidence.CERTAIN,
                               {"send_refused": r.errno_name, "sends_refused": r.sends_refused,
                                "refused_pairs": r.refused_pairs, "ice_ended_after_s": r.after_s},
                               host_firewall=True)


def _stun_refused_here(v: _View, stun: list[IceServerQueried], interfaces: list[LocalCandidateGathered]
                       ) -> Finding:
    """udp-blocked-local, certain, from gathering alone: this host refused to send every STUN request
    (the checks, when there were any, were judged by _refused_here first)."""
    sockets = len({(q.local_address, q.local_port) for q in stun})
    evidence = [f"this host refused to send every STUN request: {len(stun)} request(s) from {sockets} local "
                f"socket(s), each refused at once and again ({stun[0].error})",
                "a refused send is this host's own packet filter (an nftables or iptables drop or reject on "
                "output, or a cgroup egress rule): the STUN server, a NAT or a firewall on the way cannot cause it",
                "host candidate(s) " + ", ".join(_ep(c.address, c.port) for c in interfaces[:3]) + "; no srflx "
                "candidate"]
    if v.relayed_ok:
        evidence.append("the relayed connection (TCP) carried pings")
    return N.udp_blocked_local(v.side, evidence, Confidence.CERTAIN, {"stun_send_refused": len(stun)},
                               host_firewall=True)


def _udp_blocked_remote(v: _View) -> Finding | None:
    if not v.local_of(CandidateType.SRFLX) or not v.remote:
        return None  # without our own working STUN, the remote's lack of srflx says nothing
    if any(c.candidate_type is not CandidateType.HOST for c in v.remote):
        return None
    if not all(is_private(c.address) for c in v.remote):
        return None  # a public host candidate needs no STUN
    ours = v.local_of(CandidateType.SRFLX)[0]
    evidence = [f"this side's STUN worked: srflx {_ep(ours.address, ours.port)}",
                f"{v.other} offered only host candidates on private addresses: "
                + ", ".join(_ep(c.address, c.port) for c in v.remote[:4])]
    js = is_js_agent(v.remote_agent)
    slow = v.answer_wait_s is not None and v.answer_wait_s >= ANSWER_WAITED_S
    if slow:
        evidence.append(f"its answer came {v.answer_wait_s:.1f} s after the offer: it waited for STUN answers "
                        "that never came")
    if js:
        evidence.append(f"{v.other} is {v.remote_agent}, whose WebRTC transport uses public STUN servers by default")
    confidence = Confidence.LIKELY if (slow or js) else Confidence.POSSIBLE
    return N.udp_blocked_remote(v.other, evidence, confidence)


# --- NAT mapping and "direct is impossible" ---------------------------------------------------------


def _remote_prflx(v: _View) -> list[tuple[str, int]]:
    return sorted({(p.remote_address, p.remote_port) for p in v.finals if p.remote_type is CandidateType.PRFLX})


def _limit_text(v: _View) -> str:
    duration, data, opened, agent = v.limit
    reading = read_duration(duration, agent)
    parts = []
    if reading.effective_s:
        at = f" (at t={opened + reading.effective_s:.0f} s)" if opened is not None else ""
        unit = " — announced as " + str(duration) + ", most likely milliseconds" if reading.suspect_unit else ""
        parts.append(f"after {fmt_seconds(reading.effective_s)}{at}" + unit)
    if data:
        parts.append(f"after {fmt_bytes(data)} of traffic")
    if not parts:
        return "The relay announced no limit, so the relayed connection stays as long as the relay keeps it."
    return "The relay will cut the relayed fallback " + " or ".join(parts) + "."


def _mappings(v: _View) -> list[Finding]:
    if v.failed is None or v.failed.step is not UpgradeStep.ICE:
        return []
    ours = _probed(v.nat) or mapping_from_srflx(v.local_of(CandidateType.SRFLX))
    theirs = mapping_from_srflx(v.remote_of(CandidateType.SRFLX), _remote_prflx(v))
    reflexive = [p for p in v.finals if p.remote_type in (CandidateType.SRFLX, CandidateType.PRFLX)]
    all_reflexive_failed = bool(reflexive) and all(p.state is CandidatePairState.FAILED for p in reflexive)
    relay_worked = any(c.candidate_type is CandidateType.RELAY for c in v.local) or any(
        c.candidate_type is CandidateType.RELAY for c in v.remote)
    out: list[Finding] = []
    hard = {SYMMETRIC, PORT_CHANGED}  # seen symmetric, or the port change symmetric NATs make
    verdicts = {ours.verdict, theirs.verdict}
    # both sides hard, or one hard and the other unknown; a side that kept its port may still punch
    both_hard = bool(verdicts & hard) and verdicts <= hard | {UNKNOWN}
    if all_reflexive_failed and not relay_worked and both_hard:
        out.append(_direct_impossible(v, ours, theirs, reflexive))
    elif ours.verdict in (PORT_KEPT, PORT_CHANGED) and ours.stun_answers <= 1:
        hint = {PORT_KEPT: "The NAT kept the port, which most endpoint-independent NATs do; it is not proof.",
                PORT_CHANGED: "The NAT changed the port, which symmetric NATs usually do; it is not proof."}
        one_mapping = f"STUN servers: {', '.join(v.started.stun_servers)}: one mapping to compare"
        out.append(N.mapping_unknown(v.side, (*ours.evidence, one_mapping), hint.get(ours.verdict, "")))
    if SYMMETRIC in verdicts:
        who = [name for name, m in ((f"{v.side} NAT (this side)", ours), (f"{v.other}'s NAT", theirs))
               if m.verdict == SYMMETRIC]
        out.append(N.symmetric_seen(who, (ours.evidence if ours.verdict == SYMMETRIC else ()) + (
            theirs.evidence if theirs.verdict == SYMMETRIC else ())))
    if v.nat is not None and v.nat.mapping != NO_UDP:
        out.append(N.nat_probed(v.side, v.nat.mapping, v.nat.filtering, v.nat.evidence))
    return out


def _probed(nat: NatBehaviour | None) -> Mapping | None:
    """This side's mapping as the NAT probe measured it; None when it could not tell."""
    if nat is None or nat.mapping in (UNTESTED, NO_UDP):
        return None
    said = f"the NAT probe (RFC 5780 tests): mapping {nat.mapping}"
    if nat.mapping == EIM:
        return Mapping(EIM_SEEN, (said,), 2)
    return Mapping(SYMMETRIC, (said, *(e for e in nat.evidence if e.startswith("test "))), 2)








def _direct_impossible(v: _View, ours: Mapping, theirs: Mapping, reflexive: list[CandidatePairFinal]) -> Finding:
    def says(name: str, m: Mapping) -> str:
        word = {SYMMETRIC: "symmetric (seen)", PORT_CHANGED: "changed the port (symmetric NATs do)",
                UNKNOWN: "unknown"}[m.verdict]
        return f"{name}: {word}; " + "; ".join(m.evidence)

    seen = [m.verdict for m in (ours, theirs)]
    if seen.count(SYMMETRIC) == 2:
        confidence = Confidence.CERTAIN
    elif SYMMETRIC in seen or seen.count(PORT_CHANGED) == 2:
        confidence = Confidence.LIKELY
    else:
        confidence = Confidence.POSSIBLE
    turn = v.started.turn_servers
    evidence = [says(f"{v.side} NAT (this side)", ours), says(f"{v.other}'s NAT", theirs),
                f"all {len(reflexive)} pair(s) with a srflx or prflx candidate failed",
                "TURN: " + (f"{turn[0]} gave no relay candidate" if turn else "none configured")]
    unseen = []  # what would turn each side's hint into a measurement
    if ours.verdict != SYMMETRIC:
        unseen.append("`p2pdiag nat --stun URL --stun URL` on this network (or dial with two --stun servers)")
    if theirs.verdict != SYMMETRIC:
        unseen.append(f"two STUN servers for {v.other} (its srflx candidates then show its mapping), or "
                      f"`p2pdiag nat` on {v.other}'s network")
    duration, data_limit, opened, agent = v.limit
    cut_after = read_duration(duration, agent).effective_s
    return N.direct_impossible(evidence, confidence, _limit_text(v), "; ".join(unseen) if unseen else None,
                               {"local_mapping": ours.verdict, "remote_mapping": theirs.verdict,
                                "relay_cut_after_s": cut_after or None,
                                "relay_cut_at_t_s": opened + cut_after if cut_after and opened is not None else None,
                                "relay_data_limit_bytes": data_limit or None})


# --- TURN ---------------------------------------------------------------------------------------


def _turn(v: _View) -> list[Finding]:
    s = v.started
    if not s.turn_servers:
        return []
    relays = v.local_of(CandidateType.RELAY)
    if not relays:
        evidence = [(f"TURN server {s.turn_servers[0]} configured (ICE policy {s.ice_policy.value}); no relay "
                    "candidate was gathered")]
        turn = next((q for q in v.queries if q.server_kind is IceServerKind.TURN), None)
        if turn is not None:
            stun_silent = bool(v.local_of(CandidateType.HOST) and s.stun_servers
                               and not v.local_of(CandidateType.SRFLX))
            return [N.turn_refused(turn, evidence, stun_silent)]
        if v.gathering_s is not None:
            evidence.append(f"gathering took {v.gathering_s:.1f} s" + (
                ": the server was silent (unreachable, or UDP to it blocked)" if v.gathering_s >= GATHERING_WAITED_S
                else ": the server answered at once, so it refused the allocation"))
        if s.stun_servers and not v.local_of(CandidateType.SRFLX) and v.local_of(CandidateType.HOST):
            evidence.append("STUN got no answer either: UDP to the server looks blocked")
        return [N.turn_allocation_failed(evidence)]
    through = [p for p in v.finals if p.local_type is CandidateType.RELAY or p.remote_type is CandidateType.RELAY
               or (p.local_address, p.local_port) in {(c.address, c.port) for c in relays}]
    if not through or any(p.state is not CandidatePairState.FAILED for p in through):
        return []
    relays_text = ', '.join(_ep(c.address, c.port) for c in relays[:3])
    return [N.turn_checks_failed(relays_text, s.turn_servers[0], s.ice_policy.value, len(through))]
