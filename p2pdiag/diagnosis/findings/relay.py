"""Findings about reaching the relay and what it answers: connect, identify, HOP CONNECT, RESERVE."""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.trace.events import ErrorKind, HopStatusReceived, RelayDialFailed, ReservationFailed
from p2pdiag.wire.circuit import HOP_PROTOCOL

_NO_ANSWER_ADVICE = ("The relay did not answer in time. A firewall may drop the traffic, or "
                     "the host is down. Try `nc -vz HOST PORT` from this machine; if nc connects, nothing that "
                     "speaks libp2p is behind that port (or the address lacks /ws).")


def relay_unreachable(failed: RelayDialFailed) -> Finding:
    advice = {
        ErrorKind.REFUSED: "Nothing accepts connections at that address and port. Check the relay "
        "process is running and the port in the multiaddr is the one it listens on.",
        ErrorKind.TIMEOUT: _NO_ANSWER_ADVICE,
        ErrorKind.UNREACHABLE: "This machine has no route to the relay's address. Check the "
        "address, and whether this network can reach it.",
        ErrorKind.PEER_ID_MISMATCH: "A libp2p node answered, but with another peer id than the "
        "/p2p/ part of the address. The relay's key changed or the address is wrong: copy the "
        "relay's current address from its logs.",
        ErrorKind.SECURITY_FAILED: "The connection opened but the security handshake (Noise) "
        "failed. The relay may not be a libp2p node, or it may not offer Noise.",
        ErrorKind.MUXER_FAILED: "The relay accepted Noise but no stream muxer p2pdiag speaks "
        "(yamux, mplex).",
        ErrorKind.NEGOTIATION_FAILED: "Something answered, but not with multistream-select 1.0.0, "
        "which every libp2p node speaks: check that the address's port is the relay's libp2p port.",
        ErrorKind.WEBSOCKET_UPGRADE_FAILED: "Something answered HTTP at that address, but did not upgrade "
        "to a WebSocket: a web server or a proxy in front of the relay, or the wrong path or port. "
        "Check the address and what listens on that port.",
    }.get(failed.error_kind, "Check the relay address and that the relay is running.")
    code = Code.RELAY_WRONG_PEER_ID if failed.error_kind is ErrorKind.PEER_ID_MISMATCH else Code.RELAY_UNREACHABLE
    return Finding(
        code=code,
        severity=Severity.ERROR,
        title=f"Could not connect to the relay ({failed.error_kind.value.replace('_', ' ')})",
        evidence=(f"{failed.relay}: {failed.error}", f"gave up after {failed.duration_s:.2f} s"),
        advice=advice,
    )


def relay_silent(relay: str, waited_s: float) -> Finding:
    """relay-unreachable when the connect never ended: no answer (packets dropped, or a listener that accepts
    TCP and never speaks) until the run stopped, before the relay-connect timeout could fire."""
    return Finding(
        code=Code.RELAY_UNREACHABLE,
        severity=Severity.ERROR,
        title="Could not connect to the relay (no answer)",
        evidence=(f"{relay}: the connection got no answer in the {waited_s:.2f} s from its start to the run's end",),
        advice=_NO_ANSWER_ADVICE,
        confidence=Confidence.LIKELY,
        settle="a longer --timeout (or --step-timeout relay-connect=SECONDS below it): a connect that then "
        "fails at its own timeout is a relay that does not answer",
    )


def relay_no_hop(relay: str, agent: str | None, why: str) -> Finding:
    return Finding(
        code=Code.RELAY_NO_HOP,
        severity=Severity.ERROR,
        title="The relay does not offer Circuit Relay v2 (HOP)",
        evidence=(f"{relay} ({agent or 'unknown agent'}): {why}",),
        advice="This node is not running a relay service. Enable it (js-libp2p: circuitRelayServer(); "
        "go-libp2p: EnableRelayService; py-libp2p: CircuitV2Protocol with allow_hop=True) or use another relay.",
    )


_STATUS_ADVICE: dict[str, tuple[Code, str, str]] = {
    "NO_RESERVATION": (
        Code.HOP_NO_RESERVATION,
        "The relay has no reservation for the peer",
        ("The peer is not listening through this relay: it never reserved a slot, its reservation "
        "expired, or its connection to the relay dropped (a reservation lives only while that "
        "connection does). Check that the peer is running and lists this relay's /p2p-circuit address."),
    ),
    "CONNECTION_FAILED": (
        Code.HOP_CONNECTION_FAILED,
        "The relay could not reach the peer",
        ("The relay holds a reservation but opening the STOP stream to the peer failed: the peer is "
        "overloaded, refuses relayed connections, or went away a moment ago."),
    ),
    "RESOURCE_LIMIT_EXCEEDED": (
        Code.HOP_RESOURCE_LIMIT,
        "The relay refused: resource limit exceeded",
        ("The relay is at its limit of circuits (in total, per peer or per IP). Try again later, "
        "or use a relay with more capacity."),
    ),
    "PERMISSION_DENIED": (
        Code.HOP_PERMISSION_DENIED,
        "The relay refused: permission denied",
        "The relay only relays for allowed peers. Ask its operator to allow this peer id, or use another relay.",
    ),
    "MALFORMED_MESSAGE": (
        Code.HOP_REQUEST_REJECTED,
        "The relay could not parse the CONNECT request",
        ("The relay and p2pdiag disagree on the HOP message format, or the relay failed internally: "
        "js-libp2p relays answer MALFORMED_MESSAGE for any internal error, often while reaching the "
        "peer. Check the relay's log; report it with this trace."),
    ),
    "UNEXPECTED_MESSAGE": (
        Code.HOP_REQUEST_REJECTED,
        "The relay did not expect a CONNECT on this stream",
        "The relay and p2pdiag disagree on the HOP exchange. Report it with this trace.",
    ),
}


def hop_refused(status: HopStatusReceived) -> Finding:
    return hop_refused_named(status.status_name, f"HOP STATUS {status.status_name} (code {status.status_code}) "
                             f"from {status.relay}")


def hop_refused_named(status_name: str, evidence: str) -> Finding:
    """The relay's refusal of CONNECT by its Status name, with EVIDENCE saying where it was seen."""
    code, title, advice = _STATUS_ADVICE.get(
        status_name,
        (
            Code.HOP_UNKNOWN_STATUS,
            (f"The relay answered CONNECT with a status the spec does not define ({status_name})"
             if status_name.startswith(("UNKNOWN", "MISSING"))
             else f"The relay answered CONNECT with a status that is not an answer to CONNECT ({status_name})"),
            ("The relay is buggy or speaks a different protocol version. Report it to its operator "
            "with this trace; try another relay meanwhile."),
        ),
    )
    return Finding(
        code=code,
        severity=Severity.ERROR,
        title=title,
        evidence=(evidence,),
        advice=advice,
    )


def hop_unanswered(relay: str, stage: str, kind: ErrorKind, error: str, agent: str | None = None) -> Finding:
    if kind is ErrorKind.PROTOCOL_UNSUPPORTED:
        return relay_no_hop(relay, agent, f"it refused to negotiate {HOP_PROTOCOL} ({error})")
    return Finding(
        code=Code.HOP_UNANSWERED,
        severity=Severity.ERROR,
        title=f"The relay did not give a usable answer to CONNECT ({kind.value} while {stage})",
        evidence=(f"{relay}: {error}",),
        advice="A relay must answer CONNECT with a STATUS. Check the relay's logs; if it is "
        "overloaded, try another relay.",
    )


def identify_failed(subject: str, peer_id: str, kind: ErrorKind, error: str) -> Finding:
    return Finding(
        code=Code.IDENTIFY_FAILED,
        severity=Severity.WARNING,
        title=f"The {subject} did not answer identify",
        evidence=(f"{peer_id}: {kind.value}: {error}",),
        advice="Identify tells which protocols a node offers; without it p2pdiag cannot say what "
        "the node supports. Most libp2p nodes enable identify: check its configuration.",
    )


def reservation_refused(failed: ReservationFailed) -> Finding:
    return Finding(
        code=Code.RESERVATION_REFUSED,
        severity=Severity.ERROR,
        title=(f"The relay refused a reservation ({failed.status_name})" if failed.error_kind is None
               else f"The relay gave no reservation (no answer: {failed.error_kind.value})"),
        evidence=(f"{failed.relay}: {failed.error}",),
        advice="With no reservation nobody can dial this peer through the relay. A relay refuses "
        "when its slots are full (js-libp2p relays keep 15 and answer RESERVATION_REFUSED; "
        "py-libp2p relays keep 4 and answer RESOURCE_LIMIT_EXCEEDED) or when it allows only some "
        "peers; try another relay or ask its operator.",
    )


def reservation_lost(relay_peer_id: str, after_s: float | None, evidence: tuple[str, ...], confidence: Confidence,
                     settle: str) -> Finding:
    """A listening node's reservation left its store and was not made again before its log ends."""
    after = f" in the {after_s:.0f} s the log goes on" if after_s else ""
    return Finding(
        code=Code.RESERVATION_LOST,
        severity=Severity.ERROR,
        title=f"The node lost its reservation on relay {relay_peer_id} and did not reserve again{after}",
        evidence=evidence,
        advice="From then on every dial to this node through that relay gets NO_RESERVATION, while its process "
        "runs on and its logs look calm. js-libp2p removes a reservation when its connection to the relay "
        "closes (the relay restarted, a network change, an idle timeout); a relay given as a listen address "
        "(`<relay>/p2p-circuit`) is not dialed and reserved again afterwards (js-libp2p #3601). Also listen "
        "on a plain `/p2p-circuit` address, so the node reserves again on a relay it is connected to; watch "
        "the node's `self:peer:update` events and restart it (or dial the relay again) when its "
        "`/p2p-circuit` address goes; and check it from outside now and then with "
        "`p2pdiag dial <relay>/p2p-circuit/p2p/<peer>`.",
        confidence=confidence,
        settle=None if confidence is Confidence.CERTAIN else settle,
        data={"relay_peer_id": relay_peer_id, "after_s": None if after_s is None else round(after_s, 3)},
    )


def reservation_expired(relay_peer_id: str, evidence: tuple[str, ...]) -> Finding:
    """The expiry a reservation was made with passed with no refresh, while the node still held it."""
    return Finding(
        code=Code.RESERVATION_EXPIRED,
        severity=Severity.WARNING,
        title=f"The reservation on relay {relay_peer_id} reached its expiry with no refresh",
        evidence=evidence,
        advice="After its expiry the relay may drop the reservation at any moment, and dials to this node through "
        "it get NO_RESERVATION until the node refreshes. js-libp2p refreshes 5 minutes before the expiry, and "
        "never sooner than 30 s after reserving: a relay whose reservation TTL is under 30 s expires every "
        "reservation before its refresh. Give the relay a longer TTL (Circuit Relay v2 suggests an hour; "
        "go-libp2p's default is 1 h, js-libp2p's 2 h), or check the node's clock.",
        data={"relay_peer_id": relay_peer_id},
    )
