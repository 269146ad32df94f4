"""The network cause of a failed ICE attempt, read from candidates and pairs the way people debug ICE.

Pure: the events of one upgrade attempt in, findings out. `network_findings` is called by
diagnosis/upgrade.py where it judges an ICE (or gathering) failure; what it finds is more specific
than `webrtc-ice-failed` and comes beside it.

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
from typing import TYPE_CHECKING

from p2pdiag.diagnosis.limits import fmt_bytes, fmt_seconds, is_js_agent, read_duration
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.diagnosis.query import all_of, first
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairState,
    CandidateType,
    CircuitSecured,
    DescriptionSignaled,
    Event,
    GatheringEnd,
    HopStatusReceived,
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
    UpgradeRole,
    UpgradeStep,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
)
from p2pdiag.wire.stun import from_event

if TYPE_CHECKING:
    from p2pdiag.wire.stun import NatTest

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


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]  # str.capitalize would lower "NAT"


def _ep(address: str, port: int | None) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


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
    )


def network_findings(events: tuple[Event, ...], started: WebRTCUpgradeStarted) -> list[Finding]:
    """Findings that name the network cause of this attempt's failure at gathering or ICE; [] otherwise."""
    attempt = tuple(e for e in events if getattr(e, "connection_id", None) == started.connection_id)
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
    s = v.started
    interfaces = v.local_of(CandidateType.HOST)
    if not s.stun_servers or v.local_of(CandidateType.SRFLX) or not interfaces or s.ice_policy is IcePolicy.RELAY:
        return None
    stun = [q for q in v.queries if q.server_kind is IceServerKind.STUN]
    if any(q.outcome is not IceServerOutcome.NO_ANSWER for q in stun):
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
    elif v.gathering_s is not None:
        evidence.append(f"gathering took {v.gathering_s:.1f} s"
                        + (": the STUN requests went unanswered until aioice gave up" if waited
                           else " (a STUN answer would have come in milliseconds)"))
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
    confidence = Confidence.LIKELY if (waited or remote_srflx or probe_silent) else Confidence.POSSIBLE
    return Finding(
        data={"stun_bound_s": bound, "stun_unanswered": len(stun)} if bound is not None else {},
        code="udp-blocked-local",
        severity=Severity.ERROR,
        title=f"UDP is blocked on {v.side} network (this side)",
        evidence=tuple(evidence),
        advice="STUN got no answer while TCP to the relay works: a firewall on this network drops outgoing "
        "UDP (common in corporate and guest networks). WebRTC needs UDP, so no direct connection can be "
        "made from here. Allow outgoing UDP (at least to the STUN port and to peers), use a TURN server "
        "reachable over TCP or TLS (turn:HOST:443?transport=tcp), or stay on the relay.",
        confidence=confidence,
        settle="`p2pdiag nat` from this network (is any UDP answered?), or the same dial from another "
        "network with the relay reachable over TCP only",
    )


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
    return Finding(
        code="udp-blocked-remote",
        severity=Severity.ERROR,
        title=f"UDP is likely blocked on {v.other}'s network",
        evidence=tuple(evidence),
        advice=f"{v.other.capitalize()} has no public (srflx) candidate, and its private addresses cannot be "
        "reached from here. Most likely its network drops UDP, so its STUN requests got no answer; it may "
        "also have no STUN server configured. Check the peer's ICE servers and its firewall; a TURN server "
        "reachable over TCP on the peer's side would get around it.",
        confidence=confidence,
        settle=f"`p2pdiag nat` on {v.other}'s network, or {v.other}'s own trace (its gathering time and ICE servers)",
    )


# --- NAT mapping and "direct is impossible" ---------------------------------------------------------


def _remote_prflx(v: _View) -> list[tuple[str, int]]:
    return sorted({(p.remote_address, p.remote_port) for p in v.finals if p.remote_type is CandidateType.PRFLX})


def _limit_text(v: _View) -> str:
    duration, data, opened, agent = v.limit
    reading = read_duration(duration, agent)
    parts = []
    if reading.effective_s:
        at = f" (at t={opened + reading.effective_s:.0f} s)" if opened is not None else ""
        parts.append(f"after {fmt_seconds(reading.effective_s)}{at}"
                     + (" — announced as " + str(duration) + ", most likely milliseconds" if reading.suspect_unit else ""))
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
        out.append(_mapping_unknown(v, ours))
    if SYMMETRIC in verdicts:
        out.append(_symmetric_seen(v, ours, theirs))
    if v.nat is not None and v.nat.mapping != NO_UDP:
        out.append(_nat_probed(v, v.nat))
    return out


def _probed(nat: NatBehaviour | None) -> Mapping | None:
    """This side's mapping as the NAT probe measured it; None when it could not tell."""
    if nat is None or nat.mapping in (UNTESTED, NO_UDP):
        return None
    said = f"the NAT probe (RFC 5780 tests): mapping {nat.mapping}"
    if nat.mapping == EIM:
        return Mapping(EIM_SEEN, (said,), 2)
    return Mapping(SYMMETRIC, (said,) + tuple(e for e in nat.evidence if e.startswith("test ")), 2)


def _nat_probed(v: _View, nat: NatBehaviour) -> Finding:
    return Finding(
        code="nat-probed",
        severity=Severity.INFO,
        title=f"{v.side.capitalize()} NAT, probed: {nat.mapping} mapping, {nat.filtering} filtering",
        evidence=nat.evidence,
        advice="Measured from this side with the STUN servers given (p2pdiag nat). Endpoint-independent "
        "mapping makes this side's srflx candidate good for any peer; a dependent mapping makes it good only "
        "towards the STUN server. Filtering says who may send first: with address-and-port-dependent "
        "filtering on both sides, both must send checks at about the same time (ICE does). When this side "
        "looks fine and the checks still failed, probe the other side's network the same way.",
        confidence=Confidence.CERTAIN,
    )


def _symmetric_seen(v: _View, ours: Mapping, theirs: Mapping) -> Finding:
    who = [name for name, m in ((f"{v.side} NAT (this side)", ours), (f"{v.other}'s NAT", theirs))
           if m.verdict == SYMMETRIC]
    return Finding(
        code="nat-mapping-symmetric",
        severity=Severity.WARNING,
        title=_cap(f"{' and '.join(who)} maps each destination to a new port (symmetric)"),
        evidence=(ours.evidence if ours.verdict == SYMMETRIC else ()) + (
            theirs.evidence if theirs.verdict == SYMMETRIC else ()),
        advice="An address-and-port-dependent NAT (RFC 4787) gives the peer a different port than the one "
        "STUN reported, so the srflx candidate is useless to the other side. Direct connections then work "
        "only if the other side's NAT lets in packets from any port (full cone) or has no NAT; otherwise "
        "use TURN.",
        confidence=Confidence.CERTAIN,
    )


def _mapping_unknown(v: _View, ours: Mapping) -> Finding:
    hint = {PORT_KEPT: "The NAT kept the port, which most endpoint-independent NATs do; it is not proof.",
            PORT_CHANGED: "The NAT changed the port, which symmetric NATs usually do; it is not proof."}
    return Finding(
        code="nat-mapping-unknown",
        severity=Severity.INFO,
        title=f"{v.side.capitalize()} NAT mapping cannot be told from one STUN server",
        evidence=ours.evidence + (f"STUN servers: {', '.join(v.started.stun_servers)}: one mapping to compare",),
        advice="One STUN answer gives one mapping; whether the NAT keeps it for every destination "
        "(endpoint-independent, hole punching works) or makes a new one per destination (symmetric, it "
        "fails) needs a second server to compare. " + hint.get(ours.verdict, ""),
        confidence=Confidence.POSSIBLE,
        settle="`p2pdiag nat --stun URL --stun URL` from this network (two STUN servers, or one with "
        "RFC 5780 OTHER-ADDRESS), or turnutils_natdiscovery -m -f",
    )


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
    return Finding(
        code="direct-impossible-symmetric-nat",
        severity=Severity.ERROR,
        title="Both sides are behind NATs that map each destination anew: no direct path without TURN",
        evidence=tuple(evidence),
        advice="When both NATs are address-and-port dependent (\"symmetric\"), each side's STUN address is "
        "wrong for the other and neither lets in the other's real port, so hole punching cannot work. "
        "Add a TURN server on at least one side (--turn; in this project's lab both --ice-policy all and "
        "relay then upgrade through it), or run one peer on a network with "
        "a full-cone NAT or a public address. " + _limit_text(v),
        confidence=confidence,
        settle="; ".join(unseen) if unseen else None,
        data={"local_mapping": ours.verdict, "remote_mapping": theirs.verdict,
              "relay_cut_after_s": cut_after or None,
              "relay_cut_at_t_s": opened + cut_after if cut_after and opened is not None else None,
              "relay_data_limit_bytes": data_limit or None},
    )


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
            return [_turn_refused(v, turn, evidence)]
        if v.gathering_s is not None:
            evidence.append(f"gathering took {v.gathering_s:.1f} s" + (
                ": the server was silent (unreachable, or UDP to it blocked)" if v.gathering_s >= GATHERING_WAITED_S
                else ": the server answered at once, so it refused the allocation"))
        if s.stun_servers and not v.local_of(CandidateType.SRFLX) and v.local_of(CandidateType.HOST):
            evidence.append("STUN got no answer either: UDP to the server looks blocked")
        return [Finding(
            code="turn-allocation-failed",
            severity=Severity.ERROR,
            title="The TURN allocation failed: no relay candidate",
            evidence=tuple(evidence),
            advice="The TURN server refused the allocation or never answered. The trace does not carry the "
            "STUN error code (aioice keeps it to itself): check the credentials (--turn-user, "
            "--turn-credential: 401 means wrong ones), the realm, the server's allowed peer and relay "
            "address ranges (403), its quota (486), and that UDP to it is allowed (try "
            "?transport=tcp).",
            confidence=Confidence.LIKELY,
            settle="the TURN server's log for this username, or turnutils_uclient against it",
        )]
    through = [p for p in v.finals if p.local_type is CandidateType.RELAY or p.remote_type is CandidateType.RELAY
               or (p.local_address, p.local_port) in {(c.address, c.port) for c in relays}]
    if not through or any(p.state is not CandidatePairState.FAILED for p in through):
        return []
    return [Finding(
        code="turn-checks-failed",
        severity=Severity.ERROR,
        title="TURN allocated a relay address, but every check through it failed",
        evidence=((f"relay candidate(s): {', '.join(_ep(c.address, c.port) for c in relays[:3])} "
                  f"from {s.turn_servers[0]} (ICE policy {s.ice_policy.value})"),
                  f"{len(through)} pair(s) through TURN, all failed"),
        advice="The allocation works; what fails is the path from the TURN server to the peer, or the "
        "permissions on it: a TURN server that may not relay to the peer's addresses (coturn's "
        "denied-peer-ip / no-loopback-peers, private ranges), a peer that cannot reach the relay "
        "address, or a server that dropped the allocation (coturn closes it when a relayed send fails at "
        "once, e.g. with no route to a peer's private host candidate; its log then shows 'udp send' "
        "errors, and 438 then 400 answers). A 403 Forbidden IP in its log means denied-peer-ip. Try "
        "--ice-policy relay on both sides, and read the TURN server's log.",
        confidence=Confidence.LIKELY,
        settle="the TURN server's log for the permission and channel-bind requests of this run",
    )]


# What a TURN server's error code means for the user (RFC 8656 section 19, RFC 8489 section 14.8).
_TURN_ERRORS = {
    400: "the server could not read the request (Bad Request)",
    401: "wrong credentials: --turn-user and --turn-credential do not match the server's (or the realm)",
    403: "the server forbids this allocation (Forbidden): the user or this client's address is not allowed",
    420: "the server does not know an attribute of the request",
    437: "an allocation with this 5-tuple already exists on the server",
    438: "the nonce went stale; aioice retries once, so the server kept refusing it",
    440: "the server does not support the requested address family",
    441: "the credentials differ from those that made this allocation (Wrong Credentials)",
    442: "the server does not relay this transport (use UDP)",
    486: "the user's allocation quota on the server is used up (Allocation Quota Reached)",
    508: "the server has no relay port left (Insufficient Capacity)",
}


def _turn_refused(v: _View, q: IceServerQueried, evidence: list[str]) -> Finding:
    """turn-allocation-failed, from the allocation's own outcome: the error code when the server sent one."""
    data: dict[str, object] = {"server": q.server, "outcome": q.outcome.value}
    if q.outcome is IceServerOutcome.ERROR_RESPONSE:
        data |= {"error_code": q.error_code, "error_reason": q.error_reason}
        meaning = _TURN_ERRORS.get(q.error_code or 0, "see the server's log for this code")
        evidence.append(f"{q.server} refused the allocation after {q.duration_s:.2f} s: error {q.error_code} "
                        f"{q.error_reason or ''}".rstrip() + f" ({meaning})")
        confidence, settle = Confidence.CERTAIN, None
        advice = (f"The TURN server answered with STUN error {q.error_code}: {meaning}. Fix that on this side "
                  "(--turn-user, --turn-credential, --turn URL) or on the server, then try again.")
    elif q.outcome is IceServerOutcome.NO_ANSWER:
        data["bound_s"] = q.bound_s
        evidence.append(f"{q.server} gave no answer (given up after {q.duration_s:.1f} s; bound {q.bound_s:g} s)")
        if v.local_of(CandidateType.HOST) and v.started.stun_servers and not v.local_of(CandidateType.SRFLX):
            evidence.append("STUN got no answer either: UDP to the server looks blocked")
        confidence, settle = Confidence.LIKELY, "the TURN server's log (did the request arrive?), or ?transport=tcp"
        advice = ("The TURN server never answered: it is down or unreachable, or UDP to it is dropped on the way. "
                  "Check the address and port, and try TURN over TCP or TLS (turn:HOST:443?transport=tcp).")
    else:
        data["error"] = q.error
        evidence.append(f"{q.server}: {q.error}")
        confidence, settle = Confidence.CERTAIN, None
        advice = "The allocation could not even be attempted: check the TURN URL (host name, port, transport)."
    return Finding(
        code="turn-allocation-failed",
        severity=Severity.ERROR,
        title="The TURN allocation failed: no relay candidate"
        + (f" (error {q.error_code})" if q.error_code is not None else ""),
        evidence=tuple(evidence),
        advice=advice,
        confidence=confidence,
        settle=settle,
        data=data,
    )


# --- `p2pdiag nat`: the RFC 5780 tests, judged -------------------------------------------------------

EIM = "endpoint-independent"
ADM = "address-dependent"
APDM = "address-and-port-dependent"
DEPENDENT = "address-dependent or address-and-port-dependent"  # two servers, no OTHER-ADDRESS
NO_UDP = "no answer (UDP blocked, or the server is down)"
UNTESTED = "not tested"


@dataclass(frozen=True, slots=True)
class NatBehaviour:
    mapping: str
    filtering: str
    public: tuple[str, int] | None  # the mapped address of the first test
    evidence: tuple[str, ...]
    settle: str | None  # what would tell more, when something was not tested


def nat_behaviour(tests: list[NatTest]) -> NatBehaviour:
    """Mapping and filtering (RFC 4787 terms) from the tests `p2pdiag.probes.nat.probe` ran."""
    by = {t.name: t for t in tests}
    first_test = by.get("mapping-1")
    if first_test is None or not first_test.answered:
        server = _ep(*first_test.server) if first_test else "?"
        return NatBehaviour(NO_UDP, NO_UDP, None, (f"no answer from {server} to any retransmit",),
                            "the same probe from another network (is the server up?), or a TCP relay check")
    local_port, server, mapped = first_test.local[1], _ep(*first_test.server), _ep(*first_test.mapped)
    evidence = [f"test I: local port {local_port} → {server}: mapped {mapped}"]
    second, third = by.get("mapping-2"), by.get("mapping-3")
    settle = None
    if second is None:
        mapping = UNTESTED
        settle = "a second --stun server, or one that sends OTHER-ADDRESS (RFC 5780)"
    elif not second.answered:
        mapping = UNTESTED
        evidence.append(f"test II to {_ep(*second.server)}: no answer")
        settle = "a second STUN server that answers"
    else:
        evidence.append(f"test II → {_ep(*second.server)}: mapped {_ep(*second.mapped)}")
        if second.mapped == first_test.mapped:
            mapping = EIM
        elif first_test.other is None:
            mapping = DEPENDENT
            settle = "a STUN server with OTHER-ADDRESS (RFC 5780) tells address from address-and-port"
        elif third is not None and third.answered:
            evidence.append(f"test III → {_ep(*third.server)}: mapped {_ep(*third.mapped)}")
            mapping = ADM if third.mapped == second.mapped else APDM
        else:
            mapping = DEPENDENT
            settle = "test III got no answer; run again"
    f1, f2, f3 = by.get("filtering-1"), by.get("filtering-2"), by.get("filtering-3")
    if f1 is None or not f1.answered:
        filtering = UNTESTED
        settle = settle or "a STUN server with OTHER-ADDRESS (RFC 5780) for the filtering tests"
    elif f2 is not None and f2.answered:
        filtering = "endpoint-independent"
        evidence.append(f"an answer from the other IP and port ({_ep(*f2.origin) if f2.origin else '?'}) came in")
    elif f3 is not None and f3.answered:
        filtering = "address-dependent"
        evidence.append("no answer from the other IP; an answer from the other port came in")
    else:
        filtering = "address-and-port-dependent"
        evidence.append("no answer from the other IP, nor from the other port: only the exact address sent to")
    return NatBehaviour(mapping, filtering, first_test.mapped, tuple(evidence), settle)
