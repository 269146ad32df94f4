"""Findings about the relayed connection itself: its handshake, identify, ping, Limit, and how it ended."""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.limits import DurationReading, fmt_bytes, fmt_seconds
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.trace.events import ErrorKind
from p2pdiag.webrtc.signaling import PROTOCOL as SIGNALING_PROTOCOL

# what a cut's cause (limits.CutCause.cause) makes of it
CUT_CODE = {"duration": Code.RELAY_CUT_DURATION, "data": Code.RELAY_CUT_DATA, "unexplained": Code.RELAY_CUT_UNEXPLAINED}


def limit_unit_suspect(relay: str, reading: DurationReading) -> Finding:
    return Finding(
        code=Code.RELAY_LIMIT_UNIT,
        severity=Severity.WARNING,
        title="The relay's announced duration limit is in the wrong unit",
        evidence=(f"Limit.duration = {reading.announced} from {relay}", reading.reason),
        advice=f"Plan for the relay to cut relayed connections after about "
        f"{fmt_seconds(reading.effective_s or 0)}, not {reading.announced} s. Clients that trust the "
        "field will be surprised by the cut; a direct connection must be in place before then.",
        confidence=Confidence.LIKELY,
        settle="run `p2pdiag dial --hold` for longer than the limit and see when the relay cuts",
    )


def circuit_handshake_failed(relay: str, kind: ErrorKind, error: str) -> Finding:
    return Finding(
        code=Code.CIRCUIT_HANDSHAKE_FAILED,
        severity=Severity.ERROR,
        title="The relay connected us, but the secure session with the peer failed",
        evidence=(f"via {relay}: {kind.value}: {error}",),
        advice="The node behind the relay did not complete Noise + muxer negotiation. If the peer id "
        "is wrong the handshake fails: check it. Otherwise the peer may be overloaded or buggy.",
    )


def peer_no_signaling(peer_id: str, agent: str | None, protocols: tuple[str, ...]) -> Finding:
    return Finding(
        code=Code.PEER_NO_WEBRTC_SIGNALING,
        severity=Severity.WARNING,
        title="The peer does not offer WebRTC signaling, so no direct WebRTC connection can be made",
        evidence=(
            f"{peer_id} ({agent or 'unknown agent'}) offers {len(protocols)} protocols, not {SIGNALING_PROTOCOL}",
        ),
        advice="Add the WebRTC transport on the peer and listen on '/webrtc'. js-libp2p: transports: "
        "[webRTC(), circuitRelayTransport()], addresses.listen: ['/p2p-circuit', '/webrtc'], and the "
        "identify service, which the WebRTC transport needs. go-libp2p has no private-to-private "
        "WebRTC: there the direct path is DCUtR hole punching.",
    )


def relayed_ping_failed(kind: ErrorKind, error: str) -> Finding:
    return Finding(
        code=Code.RELAYED_PING_FAILED,
        severity=Severity.ERROR,
        title="Ping over the relayed connection failed",
        evidence=(f"{kind.value}: {error}",),
        advice="The relayed connection exists but did not carry a ping. The peer may not run ping at "
        "all (js-libp2p: services: { ping: ping() }), may refuse it on relayed connections, or the "
        "connection stopped carrying data (look at the steps above for a cut).",
    )


def relay_limited(relay: str, reading: DurationReading, data: int | None, opened_t_s: float | None) -> Finding:
    """OPENED_T_S: when the relayed connection opened, in run time; None when not known (a log without times)."""
    parts = []
    if reading.effective_s:
        when = f" (at t={opened_t_s + reading.effective_s:.1f} s)" if opened_t_s is not None else ""
        parts.append(f"after {fmt_seconds(reading.effective_s)}{when}")
    if data:
        parts.append(f"after {fmt_bytes(data)} of traffic")
    return Finding(
        code=Code.RELAY_LIMITED,
        severity=Severity.INFO,
        title="The relay will cut this relayed connection " + " or ".join(parts),
        evidence=(f"Limit from {relay}: duration {reading.announced}, data {data}",),
        advice="A limited relayed connection is for signaling, not for traffic: apps should upgrade "
        "to a direct connection before the limit, and after a cut reconnect with a back-off, not in a "
        "tight loop.",
    )


def relay_cut(cause: str, detail: str, relay: str, reason: str) -> Finding:
    code = CUT_CODE.get(cause, Code.RELAY_CUT_UNEXPLAINED)
    title = {
        "duration": "The relay cut the relayed connection at its duration limit",
        "data": "The relay cut the relayed connection at its data limit",
    }.get(cause, "The relayed connection was cut, and not at an announced limit")
    advice = {
        "duration": "This is the relay enforcing its limit, not a network fault. Upgrade to a direct "
        "connection before it, or use a relay with a longer limit for this traffic.",
        "data": "This is the relay enforcing its data limit. Keep relayed traffic to signaling, or "
        "use a relay with a larger limit. Keep-alive pings count too.",
    }.get(
        cause,
        "The relay or the network ended the circuit early: check the relay's logs (restarts, "
        "resource manager) and the connection between this machine and the relay.",
    )
    return Finding(
        code=code,
        severity=Severity.ERROR if cause == "unexplained" else Severity.WARNING,
        title=title,
        evidence=(detail, f"via {relay}: {reason}"),
        advice=advice,
        confidence=Confidence.LIKELY,
        settle={
            "duration": "a second `p2pdiag dial --hold` longer than the limit cut at the same age, or "
            "`p2pdiag relay-check --measure-limits RELAY`",
            "data": "`p2pdiag relay-check --measure-limits RELAY`: the bytes the relay really lets through, "
            "beside the limit it announces",
        }.get(cause, "the relay's own logs for this circuit"),
    )


def remote_closed(peer_id: str, detail: str) -> Finding:
    return Finding(
        code=Code.REMOTE_CLOSED_RELAYED,
        severity=Severity.WARNING,
        title="The peer closed the relayed connection",
        evidence=(detail,),
        advice="The peer ended the connection while the relay stayed up. If it does so after every "
        "upgrade attempt, it has the js-libp2p bug fixed in @libp2p/webrtc 5.2.21 (js-libp2p #3015): "
        "upgrade it. Otherwise the peer stopped, restarted or closed idle connections.",
        confidence=Confidence.LIKELY,
        settle="the peer's own log of why it closed the connection",
    )


def remote_closed_after_upgrade(detail: str, after_s: float, upgraded: bool, subject: str = "peer") -> Finding:
    """`subject` is "peer" on dial (the peer hung up on us) and "dialer" on listen (the dialer hung up)."""
    lost = ("the peer is now unreachable" if subject == "peer"
            else "the dialer is no longer connected to this peer")
    return Finding(
        code=Code.REMOTE_CLOSED_AFTER_UPGRADE,
        severity=Severity.ERROR if not upgraded else Severity.WARNING,
        title=f"The {subject} closed the relayed connection {after_s:.1f} s after the upgrade attempt"
        + ("" if upgraded else f", which had failed: {lost}"),
        evidence=(detail,),
        advice="This is the js-libp2p bug of @libp2p/webrtc up to 5.2.20 (js-libp2p #3015, fixed in "
        "5.2.21): the initiator closed the relayed connection after every upgrade attempt, success or "
        "failure. When the upgrade fails, apps then loop: connect, fail, drop, reconnect. Upgrade the "
        "peer's @libp2p/webrtc; meanwhile dial the plain /p2p-circuit address to keep the relayed path.",
        confidence=Confidence.LIKELY,
        settle="the peer's @libp2p/webrtc version (its identify agent and package lock)",
        data={"closed_by": subject, "after_upgrade_s": round(after_s, 3), "upgraded": upgraded},
    )


def limited_stream_refused(protocol: str | None, opened_by_remote: bool | None, evidence: tuple[str, ...]) -> Finding:
    what = f"a {protocol} stream" if protocol else "a protocol stream"
    here = ("this node's handler refused it (the peer opened it)" if opened_by_remote
            else "this node would not open it" if opened_by_remote is False else "")
    name = f"'{protocol}'" if protocol else "PROTOCOL"
    return Finding(
        code=Code.LIMITED_STREAM_REFUSED,
        severity=Severity.WARNING,
        title=f"js-libp2p refused {what} on the relayed (limited) connection",
        evidence=evidence + ((here,) if here else ()),
        advice="A relayed connection is limited (the relay cuts it at its time or data limit), and js-libp2p "
        "runs a protocol on it only when the protocol says it may. If the protocol's traffic fits the relay's "
        f"limits, register its handler with node.handle({name}, handler, {{ runOnLimitedConnection: true }}) "
        "on the node that receives the stream, and open it with { runOnLimitedConnection: true } in "
        "dialProtocol / newStream on the node that opens it. Otherwise wait for the direct (WebRTC) "
        "connection and open the stream on that one (a connection whose `limits` is undefined).",
    )
