"""Findings about the WebRTC upgrade: signaling, candidates, ICE, DTLS, the data channel.

The network cause under a failed attempt (UDP blocked, NATs, TURN) is in findings/network.py.
"""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.trace.events import (
    CandidatePairFinal,
    CandidatePairSelected,
    CandidatePairState,
    CandidatePairStateChanged,
    CandidateType,
    ErrorKind,
    RemoteCandidateReceived,
    RemoteCandidateRejected,
    SignalingFailed,
    UpgradeStep,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
)

MAX_LISTED_PAIRS = 12


def endpoint(address: str, port: int, kind: CandidateType | str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port} ({kind.value if isinstance(kind, CandidateType) else kind})"


def pair_text(p: CandidatePairFinal | CandidatePairSelected | CandidatePairStateChanged) -> str:
    return f"{endpoint(p.local_address, p.local_port, p.local_type)} → " \
           f"{endpoint(p.remote_address, p.remote_port, p.remote_type)}"


def signaling_unsupported(peer_id: str, reason: str) -> Finding:
    return Finding(
        code=Code.WEBRTC_SIGNALING_UNSUPPORTED,
        severity=Severity.ERROR,
        title="The peer refused the WebRTC signaling protocol",
        evidence=(f"{peer_id}: {reason}",),
        advice="The peer does not run the WebRTC transport, so no direct WebRTC connection can be made "
        "through this relay. Enable it on the peer (js-libp2p: transports: [webRTC()] and listen on "
        "'/webrtc'), or dial its plain /p2p-circuit address and live with the relay.",
    )


def signaling_malformed(bad: list[SignalingFailed]) -> Finding:
    first_bad = bad[0]
    which = first_bad.message.value if first_bad.message else "a message"
    return Finding(
        code=Code.WEBRTC_SIGNALING_MALFORMED,
        severity=Severity.ERROR,
        title=f"The peer's {which} could not be used",
        evidence=tuple(f"{b.message.value if b.message else 'message'} ({b.stage.value}): {b.error}" for b in bad[:4]),
        advice="The two implementations disagree on the signaling messages. A missing 'type' field is the "
        "known py-libp2p bug (proto3 drops SDP_OFFER=0); an SDP the WebRTC stack rejects points at an "
        "incompatible WebRTC library. Report it to the peer's implementation with this trace.",
    )


def signaling_reset(step: UpgradeStep, reason: str, initiator: bool) -> Finding:
    who = "listener" if initiator else "dialer"
    return Finding(
        code=Code.WEBRTC_SIGNALING_RESET,
        severity=Severity.ERROR,
        title=f"The {who} ended the signaling stream at the {step.value} step",
        evidence=(reason,),
        advice=f"The {who} gave up on the upgrade: its WebRTC stack failed (check its log around this time), "
        "it hit its own timeout, or the relayed connection under the stream was cut (see the relayed "
        "connection's steps). Resetting the stream is how the spec says 'this upgrade failed'.",
    )


def signaling_timeout(step: UpgradeStep, reason: str, timeout_s: float) -> Finding:
    return Finding(
        code=Code.WEBRTC_SIGNALING_TIMEOUT,
        severity=Severity.ERROR,
        title=f"No {step.value} came over the signaling stream in time",
        evidence=(reason, f"signaling budget {timeout_s:g} s"),
        advice="The other side accepted the signaling stream and then went silent: it may be stuck "
        "gathering candidates (an unreachable STUN or TURN server delays the answer by seconds), or "
        "overloaded. Try again with more time, and check its log.",
    )


def no_local_candidates(reason: str, started: WebRTCUpgradeStarted) -> Finding:
    return Finding(
        code=Code.WEBRTC_NO_LOCAL_CANDIDATES,
        severity=Severity.ERROR,
        title="This side had no ICE candidate to offer",
        evidence=(reason, (f"ICE policy {started.ice_policy.value}; STUN {list(started.stun_servers) or 'none'}; "
                           f"TURN {list(started.turn_servers) or 'none'}")),
        advice="With the relay policy only TURN candidates count: give a working TURN server (--turn). "
        "Otherwise this machine has no usable network interface for UDP; check `ip addr`, and that "
        "loopback candidates were not turned off.",
    )


def no_remote_candidates(remote: list[RemoteCandidateReceived], rejected: list[RemoteCandidateRejected],
                          bad: list[SignalingFailed]) -> Finding:
    evidence = [f"{len(remote)} candidate(s) received, none usable"]
    evidence += [f"{endpoint(r.address, r.port, r.candidate_type)}: {r.note}" for r in remote[:4]]
    evidence += [f"unreadable: {r.candidate[:80]} ({r.reason})" for r in rejected[:2]]
    evidence += [f"{b.stage.value}: {b.error}" for b in bad[:2]]
    return Finding(
        code=Code.WEBRTC_NO_REMOTE_CANDIDATES,
        severity=Severity.ERROR,
        title="The peer gave no ICE candidate this side could use",
        evidence=tuple(evidence),
        advice="Without a remote candidate there is nothing to check. The peer may have no network "
        "interface WebRTC may use (a js peer bound to an address it cannot gather on), may offer only "
        "IPv6 or TCP candidates this side cannot pair, or its candidates were lost on the way. Check the "
        "peer's WebRTC configuration (iceServers, bindAddress).",
    )


def mdns_unresolved(mdns: list[RemoteCandidateReceived]) -> Finding:
    names = sorted({r.address for r in mdns})
    return Finding(
        code=Code.WEBRTC_MDNS_UNRESOLVED,
        severity=Severity.ERROR,
        title="The peer's only candidates were mDNS names that did not resolve",
        evidence=(f"{len(mdns)} candidate(s), all .local names: {', '.join(names[:3])}",
                  "none answered an mDNS query within 1 s"),
        advice="Browsers hide local addresses behind random .local names, which resolve only on the same "
        "link (multicast DNS). From another network they never resolve: the peer needs a STUN server "
        "(for a srflx candidate) or TURN (for a relay candidate). On the same LAN, check that "
        "multicast (224.0.0.251, UDP 5353) is not filtered.",
    )


def ice_failed(failed: WebRTCUpgradeFailed, finals: list[CandidatePairFinal], started: WebRTCUpgradeStarted,
                initiator: bool, refused_here: bool = False) -> Finding:
    """REFUSED_HERE: this host refused every check's send (`webrtc.checks_refused`): none went out."""
    every_failed = bool(finals) and all(p.state is CandidatePairState.FAILED for p in finals)
    title = ("Every ICE candidate pair failed" if every_failed or failed.error_kind is ErrorKind.UNREACHABLE
             else f"No ICE candidate pair worked within {started.ice_timeout_s:g} s")
    evidence = [failed.reason]
    evidence += [f"{pair_text(p)}: {p.state.value}" for p in finals[:MAX_LISTED_PAIRS]]
    if len(finals) > MAX_LISTED_PAIRS:
        evidence.append(f"… and {len(finals) - MAX_LISTED_PAIRS} more")
    advice = ("The checks went out and nothing came back: UDP between the two is blocked (a firewall that "
              "drops UDP, or two NATs that map each destination to a new port, 'symmetric'), or the "
              "candidates are addresses the other side cannot reach (private addresses across networks). "
              "Add a STUN server on both sides (--stun) for public candidates; with symmetric NATs only "
              "TURN helps (--turn, and --ice-policy relay).")
    if refused_here:
        advice = ("No check left this host: the operating system refused every send (its own firewall drops or "
                  "rejects outgoing UDP; see udp-blocked-local), so no pair could work whatever the peer does.")
    if initiator:
        advice += (" A js-libp2p listener may still log this as a successful /webrtc connection that dies "
                   "about 8 s later: that is its side of this same failure.")
    return Finding(
        code=Code.WEBRTC_ICE_FAILED,
        severity=Severity.ERROR,
        title=title,
        evidence=tuple(evidence),
        advice=advice,
        confidence=Confidence.CERTAIN if refused_here else Confidence.LIKELY,
        settle=None if refused_here
        else "the same run from inside each network, or `p2pdiag` with --stun on both sides",
    )


def ice_not_connected(evidence: tuple[str, ...], confidence: Confidence, settle: str) -> Finding:
    """A log's view of ice_failed: offer, answer and candidates went across, and no path came up."""
    return Finding(
        code=Code.WEBRTC_ICE_FAILED,
        severity=Severity.ERROR,
        title="Offer, answer and candidates went across, but ICE found no path before the upgrade gave up",
        evidence=evidence,
        advice="Signaling over the relay worked; the direct path did not. Most often UDP between the two is "
        "blocked (a firewall that drops UDP, common in corporate and guest networks), or the candidates are "
        "addresses the other side cannot reach (private addresses across networks, symmetric NATs). Give "
        "both sides a STUN server (`rtcConfiguration.iceServers`) for public candidates, and a TURN server "
        "reachable over TCP or TLS (turn:HOST:443?transport=tcp) where UDP is blocked.",
        confidence=confidence,
        settle=settle,
    )


def dtls_failed(reason: str, error: str | None) -> Finding:
    return Finding(
        code=Code.WEBRTC_DTLS_FAILED,
        severity=Severity.ERROR,
        title="ICE connected, but the DTLS handshake failed",
        evidence=tuple(dict.fromkeys(x for x in (reason, error) if x)),
        advice="A path works, but the encrypted session over it did not come up. A fingerprint mismatch "
        "means the SDP was changed on the way or the peer used another certificate than it announced "
        "(report it). A handshake that stalls points at a path that passes small packets and drops "
        "large ones (MTU), or at incompatible DTLS versions.",
    )


def channel_not_opened(reason: str, initiator: bool) -> Finding:
    return Finding(
        code=Code.WEBRTC_CHANNEL_NOT_OPENED,
        severity=Severity.ERROR,
        title="The WebRTC connection came up, but no data channel opened",
        evidence=(reason,),
        advice=("ICE and DTLS worked; SCTP or the data channel negotiation did not. "
                + ("The peer did not acknowledge the 'init' channel: " if initiator
                   else "The dialer opened no channel: ")
                + "its WebRTC stack may not support SCTP data channels as negotiated (check the SDP's "
                "m=application section and max-message-size), or it closed the connection at once."),
    )


def upgrade_abandoned(what: str) -> Finding:
    return Finding(
        code=Code.WEBRTC_UPGRADE_ABANDONED,
        severity=Severity.WARNING,
        title="The dialer abandoned the WebRTC upgrade",
        evidence=(what,),
        advice="The other side gave up, not this one: look at the dialer's own result for why (a js-libp2p "
        "dialer gives up after its 6 s per-address timeout, e.g. when UDP is blocked). A js-libp2p "
        "listener in this place logs a 'successful' /webrtc connection that cannot carry streams and "
        "is dropped about 8 s later; p2pdiag does not count it as upgraded.",
        confidence=Confidence.LIKELY,
        settle="the dialer's trace or log for the same moment",
    )


def upgrade_not_attempted(reason: str, advice: str = "The relay findings above still hold; "
                          "this trace has nothing about a direct connection.") -> Finding:
    return Finding(
        code=Code.UPGRADE_NOT_ATTEMPTED,
        severity=Severity.INFO,
        title="No WebRTC upgrade was attempted",
        evidence=(reason,),
        advice=advice,
    )


def ice_failed_seen(evidence: tuple[str, ...], every_failed: bool, confidence: Confidence, settle: str,
                    ended: bool = True) -> Finding:
    """webrtc-ice-failed as another program's record shows it (a webrtc-internals dump): its states and
    pairs, not p2pdiag's own upgrade events. ENDED: ICE reached failed (else the record stops while it
    was still checking)."""
    title = ("Every ICE candidate pair failed" if every_failed else "ICE failed: no candidate pair worked") \
        if ended else "No ICE candidate pair had worked when the record ends"
    return Finding(
        code=Code.WEBRTC_ICE_FAILED,
        severity=Severity.ERROR,
        title=title,
        evidence=evidence,
        advice="The checks went out and no pair worked: UDP between the two is blocked (a firewall that drops "
        "UDP, or two NATs that map each destination to a new port, 'symmetric'), or the candidates are "
        "addresses the other side cannot reach (private addresses across networks). Give both sides a STUN "
        "server for public candidates; with symmetric NATs only TURN helps.",
        confidence=confidence,
        settle=settle,
    )


def no_local_candidates_seen(evidence: tuple[str, ...], relay_only: bool) -> Finding:
    """webrtc-no-local-candidates from another program's record (a webrtc-internals dump)."""
    return Finding(
        code=Code.WEBRTC_NO_LOCAL_CANDIDATES,
        severity=Severity.ERROR,
        title="This side had no ICE candidate to offer",
        evidence=evidence,
        advice=("With iceTransportPolicy 'relay' only TURN candidates count: give a working TURN server. "
                if relay_only else "")
        + "Otherwise the browser found no network interface WebRTC may use (a browser gathers no loopback "
        "candidate), or its gathering was cut short; check the machine's network and the ICE servers.",
    )
