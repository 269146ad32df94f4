"""The findings catalogue: one function a finding code, each a page in docs/verdicts/."""

from __future__ import annotations

from p2pdiag.diagnosis.limits import DurationReading, fmt_bytes, fmt_seconds
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.trace.events import ErrorKind, HopStatusReceived, RelayDialFailed, ReservationFailed
from p2pdiag.webrtc.signaling import PROTOCOL as SIGNALING_PROTOCOL
from p2pdiag.wire.circuit import HOP_PROTOCOL


def relay_unreachable(failed: RelayDialFailed) -> Finding:
    advice = {
        ErrorKind.REFUSED: "Nothing accepts connections at that address and port. Check the relay "
        "process is running and the port in the multiaddr is the one it listens on.",
        ErrorKind.TIMEOUT: "The relay did not answer in time. A firewall may drop the traffic, or "
        "the host is down. Try `nc -vz HOST PORT` from this machine; if nc connects, nothing that "
        "speaks libp2p is behind that port (or the address lacks /ws).",
        ErrorKind.UNREACHABLE: "This machine has no route to the relay's address. Check the "
        "address, and whether this network can reach it.",
        ErrorKind.PEER_ID_MISMATCH: "A libp2p node answered, but with another peer id than the "
        "/p2p/ part of the address. The relay's key changed or the address is wrong: copy the "
        "relay's current address from its logs.",
        ErrorKind.SECURITY_FAILED: "The connection opened but the security handshake (Noise) "
        "failed. The relay may not be a libp2p node, or it may not offer Noise.",
        ErrorKind.MUXER_FAILED: "The relay accepted Noise but no stream muxer p2pdiag speaks "
        "(yamux, mplex).",
    }.get(failed.error_kind, "Check the relay address and that the relay is running.")
    code = "relay-wrong-peer-id" if failed.error_kind is ErrorKind.PEER_ID_MISMATCH else "relay-unreachable"
    return Finding(
        code=code,
        severity=Severity.ERROR,
        title=f"Could not connect to the relay ({failed.error_kind.value.replace('_', ' ')})",
        evidence=(f"{failed.relay}: {failed.error}", f"gave up after {failed.duration_s:.2f} s"),
        advice=advice,
    )


def relay_no_hop(relay: str, agent: str | None, why: str) -> Finding:
    return Finding(
        code="relay-no-hop",
        severity=Severity.ERROR,
        title="The relay does not offer Circuit Relay v2 (HOP)",
        evidence=(f"{relay} ({agent or 'unknown agent'}): {why}",),
        advice="This node is not running a relay service. Enable it (js-libp2p: circuitRelayServer(); "
        "go-libp2p: EnableRelayService; py-libp2p: CircuitV2Protocol with allow_hop=True) or use another relay.",
    )


_STATUS_ADVICE: dict[str, tuple[str, str, str]] = {
    "NO_RESERVATION": (
        "hop-no-reservation",
        "The relay has no reservation for the peer",
        "The peer is not listening through this relay: it never reserved a slot, its reservation "
        "expired, or its connection to the relay dropped (a reservation lives only while that "
        "connection does). Check that the peer is running and lists this relay's /p2p-circuit address.",
    ),
    "CONNECTION_FAILED": (
        "hop-connection-failed",
        "The relay could not reach the peer",
        "The relay holds a reservation but opening the STOP stream to the peer failed: the peer is "
        "overloaded, refuses relayed connections, or went away a moment ago.",
    ),
    "RESOURCE_LIMIT_EXCEEDED": (
        "hop-resource-limit",
        "The relay refused: resource limit exceeded",
        "The relay is at its limit of circuits (in total, per peer or per IP). Try again later, "
        "or use a relay with more capacity.",
    ),
    "PERMISSION_DENIED": (
        "hop-permission-denied",
        "The relay refused: permission denied",
        "The relay only relays for allowed peers. Ask its operator to allow this peer id, or use another relay.",
    ),
    "MALFORMED_MESSAGE": (
        "hop-request-rejected",
        "The relay could not parse the CONNECT request",
        "The relay and p2pdiag disagree on the HOP message format, or the relay failed internally: "
        "js-libp2p relays answer MALFORMED_MESSAGE for any internal error, often while reaching the "
        "peer. Check the relay's log; report it with this trace.",
    ),
    "UNEXPECTED_MESSAGE": (
        "hop-request-rejected",
        "The relay did not expect a CONNECT on this stream",
        "The relay and p2pdiag disagree on the HOP exchange. Report it with this trace.",
    ),
}


def hop_refused(status: HopStatusReceived) -> Finding:
    code, title, advice = _STATUS_ADVICE.get(
        status.status_name,
        (
            "hop-unknown-status",
            (f"The relay answered CONNECT with a status the spec does not define ({status.status_name})"
             if status.status_name.startswith(("UNKNOWN", "MISSING"))
             else f"The relay answered CONNECT with a status that is not an answer to CONNECT ({status.status_name})"),
            "The relay is buggy or speaks a different protocol version. Report it to its operator "
            "with this trace; try another relay meanwhile.",
        ),
    )
    return Finding(
        code=code,
        severity=Severity.ERROR,
        title=title,
        evidence=(f"HOP STATUS {status.status_name} (code {status.status_code}) from {status.relay}",),
        advice=advice,
    )


def hop_unanswered(relay: str, stage: str, kind: ErrorKind, error: str, agent: str | None = None) -> Finding:
    if kind is ErrorKind.PROTOCOL_UNSUPPORTED:
        return relay_no_hop(relay, agent, f"it refused to negotiate {HOP_PROTOCOL} ({error})")
    return Finding(
        code="hop-unanswered",
        severity=Severity.ERROR,
        title=f"The relay did not give a usable answer to CONNECT ({kind.value} while {stage})",
        evidence=(f"{relay}: {error}",),
        advice="A relay must answer CONNECT with a STATUS. Check the relay's logs; if it is "
        "overloaded, try another relay.",
    )


def limit_unit_suspect(relay: str, reading: DurationReading) -> Finding:
    return Finding(
        code="relay-limit-unit",
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
        code="circuit-handshake-failed",
        severity=Severity.ERROR,
        title="The relay connected us, but the secure session with the peer failed",
        evidence=(f"via {relay}: {kind.value}: {error}",),
        advice="The node behind the relay did not complete Noise + muxer negotiation. If the peer id "
        "is wrong the handshake fails: check it. Otherwise the peer may be overloaded or buggy.",
    )


def peer_no_signaling(peer_id: str, agent: str | None, protocols: tuple[str, ...]) -> Finding:
    return Finding(
        code="peer-no-webrtc-signaling",
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


def identify_failed(subject: str, peer_id: str, kind: ErrorKind, error: str) -> Finding:
    return Finding(
        code="identify-failed",
        severity=Severity.WARNING,
        title=f"The {subject} did not answer identify",
        evidence=(f"{peer_id}: {kind.value}: {error}",),
        advice="Identify tells which protocols a node offers; without it p2pdiag cannot say what "
        "the node supports. Most libp2p nodes enable identify: check its configuration.",
    )


def relayed_ping_failed(kind: ErrorKind, error: str) -> Finding:
    return Finding(
        code="relayed-ping-failed",
        severity=Severity.ERROR,
        title="Ping over the relayed connection failed",
        evidence=(f"{kind.value}: {error}",),
        advice="The relayed connection exists but did not carry a ping. The peer may not run ping at "
        "all (js-libp2p: services: { ping: ping() }), may refuse it on relayed connections, or the "
        "connection stopped carrying data (look at the steps above for a cut).",
    )


def relay_limited(relay: str, reading: DurationReading, data: int | None, opened_t_s: float) -> Finding:
    parts = []
    if reading.effective_s:
        parts.append(f"after {fmt_seconds(reading.effective_s)} (at t={opened_t_s + reading.effective_s:.1f} s)")
    if data:
        parts.append(f"after {fmt_bytes(data)} of traffic")
    return Finding(
        code="relay-limited",
        severity=Severity.INFO,
        title="The relay will cut this relayed connection " + " or ".join(parts),
        evidence=(f"Limit from {relay}: duration {reading.announced}, data {data}",),
        advice="A limited relayed connection is for signaling, not for traffic: apps should upgrade "
        "to a direct connection before the limit, and after a cut reconnect with a back-off, not in a "
        "tight loop.",
    )


def relay_cut(cause: str, detail: str, relay: str, reason: str) -> Finding:
    code = {"duration": "relay-cut-duration", "data": "relay-cut-data"}.get(cause, "relay-cut-unexplained")
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
        code="remote-closed-relayed",
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
        code="remote-closed-after-upgrade",
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


def upgrade_not_attempted(reason: str, advice: str = "The relay findings above still hold; "
                          "this trace has nothing about a direct connection.") -> Finding:
    return Finding(
        code="upgrade-not-attempted",
        severity=Severity.INFO,
        title="No WebRTC upgrade was attempted",
        evidence=(reason,),
        advice=advice,
    )


def step_timed_out(step: str, timeout_s: float) -> Finding:
    return Finding(
        code="step-timeout",
        severity=Severity.ERROR,
        title=f"Step '{step}' got no answer within {timeout_s:g} s",
        evidence=(f"timeout {step}={timeout_s:g} s",),
        advice=f"A slow network may need more: --step-timeout {step}=SECONDS. A node that never "
        "answers is hung or is not the node you think it is.",
    )


def interrupted(reason: str, t_s: float) -> Finding:
    return Finding(
        code="run-interrupted",
        severity=Severity.WARNING,
        title="The run was stopped before it finished" + (
            " (--timeout ran out)" if reason == "budget" else " (Ctrl-C or SIGTERM)"
        ),
        evidence=(f"stopped at t={t_s:.2f} s",),
        advice="The steps above are what happened until then. Run again with a larger --timeout to see the rest.",
    )


def reservation_refused(failed: ReservationFailed) -> Finding:
    return Finding(
        code="reservation-refused",
        severity=Severity.ERROR,
        title=(f"The relay refused a reservation ({failed.status_name})" if failed.error_kind is None
               else f"The relay gave no reservation (no answer: {failed.error_kind.value})"),
        evidence=(f"{failed.relay}: {failed.error}",),
        advice="With no reservation nobody can dial this peer through the relay. A relay refuses "
        "when its slots are full (js-libp2p relays keep 15 and answer RESERVATION_REFUSED; "
        "py-libp2p relays keep 4 and answer RESOURCE_LIMIT_EXCEEDED) or when it allows only some "
        "peers; try another relay or ask its operator.",
    )
