"""Findings that name the network cause under a failed WebRTC upgrade: UDP blocked, NAT mapping, TURN.

diagnosis/network.py decides which apply and gathers their evidence; these word them.
"""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.trace.events import IceServerOutcome, IceServerQueried


def udp_blocked_local(side: str, evidence: list[str], confidence: Confidence, data: dict[str, object],
                      host_firewall: bool = False) -> Finding:
    """HOST_FIREWALL: this host's own packet filter refused the sends (seen, not inferred)."""
    if host_firewall:
        title = f"UDP is refused by this host's own firewall ({side} side)"
        advice = ("The operating system refused to send the ICE checks: a packet filter on this machine "
                  "(nftables, iptables, a container's or a cgroup's egress rule) drops or rejects outgoing UDP, "
                  "while TCP to the relay works. WebRTC needs UDP, so no direct connection can be made from here. "
                  "Allow outgoing UDP in this host's firewall (`nft list ruleset`, `iptables -S OUTPUT`), use a "
                  "TURN server reachable over TCP or TLS (turn:HOST:443?transport=tcp), or stay on the relay.")
        settle = None
    else:
        title = f"UDP is blocked on {side} network (this side)"
        advice = ("STUN got no answer while TCP to the relay works: a firewall on this network drops outgoing "
                  "UDP (common in corporate and guest networks). WebRTC needs UDP, so no direct connection can be "
                  "made from here. Allow outgoing UDP (at least to the STUN port and to peers), use a TURN server "
                  "reachable over TCP or TLS (turn:HOST:443?transport=tcp), or stay on the relay.")
        settle = ("`p2pdiag nat` from this network (is any UDP answered?), or the same dial from another "
                  "network with the relay reachable over TCP only")
    return Finding(
        data=data,
        code=Code.UDP_BLOCKED_LOCAL,
        severity=Severity.ERROR,
        title=title,
        evidence=tuple(evidence),
        advice=advice,
        confidence=confidence,
        settle=settle,
    )


def udp_blocked_remote(other: str, evidence: list[str], confidence: Confidence) -> Finding:
    return Finding(
        code=Code.UDP_BLOCKED_REMOTE,
        severity=Severity.ERROR,
        title=f"UDP is likely blocked on {other}'s network",
        evidence=tuple(evidence),
        advice=f"{other.capitalize()} has no public (srflx) candidate, and its private addresses cannot be "
        "reached from here. Most likely its network drops UDP, so its STUN requests got no answer; it may "
        "also have no STUN server configured. Check the peer's ICE servers and its firewall; a TURN server "
        "reachable over TCP on the peer's side would get around it.",
        confidence=confidence,
        settle=f"`p2pdiag nat` on {other}'s network, or {other}'s own trace (its gathering time and ICE servers)",
    )


def nat_probed(side: str, mapping: str, filtering: str, evidence: tuple[str, ...]) -> Finding:
    return Finding(
        code=Code.NAT_PROBED,
        severity=Severity.INFO,
        title=f"{side.capitalize()} NAT, probed: {mapping} mapping, {filtering} filtering",
        evidence=evidence,
        advice="Measured from this side with the STUN servers given (p2pdiag nat). Endpoint-independent "
        "mapping makes this side's srflx candidate good for any peer; a dependent mapping makes it good only "
        "towards the STUN server. Filtering says who may send first: with address-and-port-dependent "
        "filtering on both sides, both must send checks at about the same time (ICE does). When this side "
        "looks fine and the checks still failed, probe the other side's network the same way.",
        confidence=Confidence.CERTAIN,
    )


def symmetric_seen(who: list[str], evidence: tuple[str, ...]) -> Finding:
    """`who`: the NATs seen to map each destination anew ("the dialer's NAT (this side)", ...)."""
    title = f"{' and '.join(who)} maps each destination to a new port (symmetric)"
    return Finding(
        code=Code.NAT_MAPPING_SYMMETRIC,
        severity=Severity.WARNING,
        title=title[:1].upper() + title[1:],  # str.capitalize would lower "NAT"
        evidence=evidence,
        advice="An address-and-port-dependent NAT (RFC 4787) gives the peer a different port than the one "
        "STUN reported, so the srflx candidate is useless to the other side. Direct connections then work "
        "only if the other side's NAT lets in packets from any port (full cone) or has no NAT; otherwise "
        "use TURN.",
        confidence=Confidence.CERTAIN,
    )


def mapping_unknown(side: str, evidence: tuple[str, ...], hint: str) -> Finding:
    return Finding(
        code=Code.NAT_MAPPING_UNKNOWN,
        severity=Severity.INFO,
        title=f"{side.capitalize()} NAT mapping cannot be told from one STUN server",
        evidence=evidence,
        advice="One STUN answer gives one mapping; whether the NAT keeps it for every destination "
        "(endpoint-independent, hole punching works) or makes a new one per destination (symmetric, it "
        "fails) needs a second server to compare. " + hint,
        confidence=Confidence.POSSIBLE,
        settle="`p2pdiag nat --stun URL --stun URL` from this network (two STUN servers, or one with "
        "RFC 5780 OTHER-ADDRESS), or turnutils_natdiscovery -m -f",
    )


def direct_impossible(evidence: list[str], confidence: Confidence, limit_text: str, settle: str | None,
                      data: dict[str, object]) -> Finding:
    return Finding(
        code=Code.DIRECT_IMPOSSIBLE_SYMMETRIC_NAT,
        severity=Severity.ERROR,
        title="Both sides are behind NATs that map each destination anew: no direct path without TURN",
        evidence=tuple(evidence),
        advice="When both NATs are address-and-port dependent (\"symmetric\"), each side's STUN address is "
        "wrong for the other and neither lets in the other's real port, so hole punching cannot work. "
        "Add a TURN server on at least one side (--turn; in this project's lab both --ice-policy all and "
        "relay then upgrade through it), or run one peer on a network with "
        "a full-cone NAT or a public address. " + limit_text,
        confidence=confidence,
        settle=settle,
        data=data,
    )


def turn_allocation_failed(evidence: list[str]) -> Finding:
    """No relay candidate, and no allocation outcome recorded (traces from before it was)."""
    return Finding(
        code=Code.TURN_ALLOCATION_FAILED,
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
    )


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


def turn_error_seen(url: str, code: int | None, text: str, evidence: list[str]) -> Finding:
    """turn-allocation-failed from an `icecandidateerror` (a browser's webrtc-internals dump): the
    server's STUN error code, or 701 when it never answered."""
    data: dict[str, object] = {"server": url, "error_code": code, "error_reason": text}
    if code is not None and 300 <= code < 700:
        # _TURN_ERRORS speaks of p2pdiag's own options and aioice; a browser has an iceServers entry
        meaning = {401: "wrong credentials: the iceServers entry's username and credential do not match the "
                        "server's (or its realm)",
                   438: "the nonce went stale and the server kept refusing it"}.get(
            code, _TURN_ERRORS.get(code, "see the server's log for this code"))
        evidence.append(f"{url} refused the allocation: error {code} {text}".rstrip() + f" ({meaning})")
        advice = (f"The TURN server answered with STUN error {code}: {meaning}. Fix the iceServers entry "
                  "(URL, username, credential) or the server, then try again.")
        confidence, settle = Confidence.CERTAIN, None
    else:
        evidence.append(f"{url}: error {code} {text}".rstrip() + " (701: the browser got no answer)")
        advice = ("The TURN server never answered: it is down or unreachable, or UDP to it is dropped on the way. "
                  "Check the address and port, and try TURN over TCP or TLS (turn:HOST:443?transport=tcp).")
        confidence, settle = Confidence.LIKELY, "the TURN server's log (did the request arrive?), or ?transport=tcp"
    return Finding(
        code=Code.TURN_ALLOCATION_FAILED,
        severity=Severity.ERROR,
        title="The TURN allocation failed: no relay candidate" + (f" (error {code})" if code is not None else ""),
        evidence=tuple(evidence),
        advice=advice,
        confidence=confidence,
        settle=settle,
        data=data,
    )


def turn_refused(q: IceServerQueried, evidence: list[str], stun_silent: bool) -> Finding:
    """turn-allocation-failed, from the allocation's own outcome: the error code when the server sent one.
    `stun_silent`: this side's STUN got no answer either."""
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
        if stun_silent:
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
        code=Code.TURN_ALLOCATION_FAILED,
        severity=Severity.ERROR,
        title="The TURN allocation failed: no relay candidate"
        + (f" (error {q.error_code})" if q.error_code is not None else ""),
        evidence=tuple(evidence),
        advice=advice,
        confidence=confidence,
        settle=settle,
        data=data,
    )


def turn_checks_failed(relays: str, server: str, policy: str, through: int) -> Finding:
    return Finding(
        code=Code.TURN_CHECKS_FAILED,
        severity=Severity.ERROR,
        title="TURN allocated a relay address, but every check through it failed",
        evidence=((f"relay candidate(s): {relays} from {server} (ICE policy {policy})"),
                  f"{through} pair(s) through TURN, all failed"),
        advice="The allocation works; what fails is the path from the TURN server to the peer, or the "
        "permissions on it: a TURN server that may not relay to the peer's addresses (coturn's "
        "denied-peer-ip / no-loopback-peers, private ranges), a peer that cannot reach the relay "
        "address, or a server that dropped the allocation (coturn closes it when a relayed send fails at "
        "once, e.g. with no route to a peer's private host candidate; its log then shows 'udp send' "
        "errors, and 438 then 400 answers). A 403 Forbidden IP in its log means denied-peer-ip. Try "
        "--ice-policy relay on both sides, and read the TURN server's log.",
        confidence=Confidence.LIKELY,
        settle="the TURN server's log for the permission and channel-bind requests of this run",
    )
