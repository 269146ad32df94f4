"""relay-check's own findings: the reservation reply, its voucher, the loop test, limits measured, slots.

The codes relay-check shares with dial and listen (relay-unreachable, relay-no-hop,
reservation-refused, relay-limit-unit, step-timeout...) come from findings/relay.py, circuit.py
and run.py.
"""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.limits import fmt_bytes, fmt_seconds
from p2pdiag.diagnosis.model import Confidence, Finding, Severity
from p2pdiag.trace.events import ErrorKind, ReservationFailed
from p2pdiag.trace.events.relaycheck import EntryRejected, ProbeCrashed, TransferFailed
from p2pdiag.wire.envelope import Check, CheckResult

VOUCHER_CODE = {
    Check.ENVELOPE: Code.VOUCHER_MALFORMED,
    Check.PAYLOAD_TYPE: Code.VOUCHER_MALFORMED,
    Check.PAYLOAD: Code.VOUCHER_MALFORMED,
    Check.SIGNATURE: Code.VOUCHER_BAD_SIGNATURE,
    Check.DOMAIN: Code.VOUCHER_BAD_SIGNATURE,
    Check.SIGNER: Code.VOUCHER_BAD_SIGNATURE,
    Check.RELAY: Code.VOUCHER_WRONG_RELAY,
    Check.PEER: Code.VOUCHER_WRONG_PEER,
    Check.EXPIRATION: Code.VOUCHER_EXPIRATION,
}


_VOUCHER_TITLE = {
    Code.VOUCHER_MALFORMED: "The reservation voucher is not a well-formed relay voucher",
    Code.VOUCHER_BAD_SIGNATURE: "The reservation voucher's signature is not the relay's",
    Code.VOUCHER_WRONG_RELAY: "The reservation voucher names another relay",
    Code.VOUCHER_WRONG_PEER: "The reservation voucher names another peer than the one that reserved",
    Code.VOUCHER_EXPIRATION: "The reservation voucher's expiration is wrong",
}


_VOUCHER_ADVICE = (
    "The relay's reservation replies are broken or forged: a client that verifies vouchers (as the "
    "spec allows) rejects this reservation. If you run the relay, upgrade its libp2p; if it sits behind "
    "a proxy, check that the proxy does not rewrite libp2p traffic. Otherwise prefer another relay."
)


def reservation_addrs(relay: str, problems: list[str]) -> Finding:
    return Finding(
        code=Code.RESERVATION_ADDRS,
        severity=Severity.WARNING,
        title="The reservation's addresses will not get dialers to this relay",
        evidence=(f"{relay}: Reservation.addrs", *problems),
        advice="Clients advertise <reservation addr>/p2p-circuit/p2p/<their id>, so these addresses must be "
        "the relay's public, dialable ones. Configure the relay's announce addresses (js-libp2p: "
        "addresses.announce; go-libp2p: AddrsFactory) to its public IP or DNS name.",
    )


def reservation_ttl(relay: str, expire: int | None, ttl: float | None) -> Finding:
    if ttl is None:
        title, severity, what = "The reservation has no expiry", Severity.WARNING, "Reservation.expire is absent or 0"
    elif ttl <= 0:
        title, severity = "The relay granted a reservation that had already expired", Severity.ERROR
        what = f"expire = unix {expire}, {fmt_seconds(round(-ttl))} before the reply arrived"
    else:
        title, severity = "The reservation's lifetime is implausible", Severity.WARNING
        what = f"expire = unix {expire}, {fmt_seconds(round(ttl))} after the reply arrived"
    return Finding(
        code=Code.RESERVATION_TTL,
        severity=severity,
        title=title,
        evidence=(f"{relay}: {what}",),
        advice="Clients refresh a reservation before its expiry; with no expiry or one in the past they "
        "cannot schedule it, and a lifetime of minutes or weeks is a misconfiguration (relays use 1 to 2 "
        "hours). Check the relay's clock (NTP) and its reservation TTL setting.",
    )


def reserve_unanswered(relay: str, failed: ReservationFailed) -> Finding:
    how = failed.error_kind.value.replace("_", " ") if failed.error_kind else "no reservation in the reply"
    return Finding(
        code=Code.RESERVE_UNANSWERED,
        severity=Severity.ERROR,
        title=f"The relay gave no usable answer to RESERVE ({how})",
        evidence=(f"{relay}: {failed.status_name}: {failed.error}", f"after {failed.duration_s:.2f} s"),
        advice="A relay must answer RESERVE with a STATUS (and, when OK, a Reservation). One that opens the "
        "HOP stream and then stays silent or hangs up is overloaded, stuck or broken: check its logs and "
        "resource limits, or use another relay.",
    )


def reserve_unknown_status(relay: str, failed: ReservationFailed) -> Finding:
    return Finding(
        code=Code.HOP_UNKNOWN_STATUS,
        severity=Severity.ERROR,
        title=f"The relay answered RESERVE with a status the spec does not define ({failed.status_name})",
        evidence=(f"{relay}: HOP STATUS code {failed.status_code}",),
        advice="The relay is buggy or speaks another protocol version. Report it to its operator with this "
        "trace; use another relay meanwhile.",
    )


def refresh_failed(relay: str, why: str) -> Finding:
    return Finding(
        code=Code.RESERVATION_REFRESH_FAILED,
        severity=Severity.ERROR,
        title="Refreshing the reservation before its expiry did not work",
        evidence=(f"{relay}: {why}",),
        advice="Listeners refresh their reservation well before it expires; if the relay refuses, they "
        "become unreachable through it at expiry. Check the relay's logs for why it refuses a refresh "
        "(a relay must accept a RESERVE from a peer that already holds a reservation).",
    )


def limit_too_small(relay: str, why: str) -> Finding:
    return Finding(
        code=Code.RELAY_LIMIT_TOO_SMALL,
        severity=Severity.WARNING,
        title="The relay's circuit limit is too small to be useful",
        evidence=(f"{relay}: {why}",),
        advice="Relayed connections through this relay die before a peer can do anything with them. "
        "Circuit Relay v2 relays usually allow 2 minutes and 128 KiB: raise the relay's limits.",
    )


def limit_inconsistent(relay: str, seen: dict[str, tuple[int | None, int | None]]) -> Finding:
    return Finding(
        code=Code.RELAY_LIMIT_INCONSISTENT,
        severity=Severity.WARNING,
        title="The relay announces different limits for the same circuit",
        evidence=(f"{relay}: " + "; ".join(f"{where}: duration {d}, data {b}" for where, (d, b) in seen.items()),),
        advice="The reservation, the HOP STATUS to the dialer and the STOP CONNECT to the listener should "
        "carry the same Limit. Each side plans with the one it saw: trust the smallest.",
        confidence=Confidence.CERTAIN,
    )


def voucher_missing(relay: str) -> Finding:
    return Finding(
        code=Code.VOUCHER_MISSING,
        severity=Severity.INFO,
        title="The relay sent no reservation voucher",
        evidence=(f"{relay}: Reservation.voucher is empty",),
        advice="Vouchers are optional and clients do not need them to listen through the relay. Nothing "
        "to do unless your application relies on vouchers as proof of a reservation.",
    )


def voucher_finding(relay: str, results: list[CheckResult], refresh: bool) -> Finding:
    """The finding for one group of voucher checks (from voucher_problems)."""
    which = "refreshed reservation's voucher" if refresh else "voucher"
    evidence = (f"{relay}: {which}", *(f"check {r.check.value}: {r.detail}" for r in results))
    if results[0].ok is None:
        return Finding(
            code=Code.VOUCHER_UNVERIFIABLE,
            severity=Severity.INFO,
            title="The voucher's signature could not be checked",
            evidence=evidence,
            advice="p2pdiag verifies Ed25519, RSA, ECDSA and secp256k1 signatures with the 'cryptography' "
            "package. Install it, or check this relay's voucher with its own implementation.",
        )
    code = VOUCHER_CODE[results[0].check]
    expired = code == Code.VOUCHER_EXPIRATION and any("expired" in r.detail for r in results)
    return Finding(
        code=VOUCHER_CODE[results[0].check],
        severity=Severity.WARNING if code == Code.VOUCHER_EXPIRATION and not expired else Severity.ERROR,
        title=_VOUCHER_TITLE[code],
        evidence=evidence,
        advice=_VOUCHER_ADVICE,
    )


def loop_failed(relay: str, stage: str, why: str) -> Finding:
    return Finding(
        code=Code.RELAY_LOOP_FAILED,
        severity=Severity.ERROR,
        title=f"The relay granted a reservation but did not relay (failed at {stage})",
        evidence=(f"{relay}: {why}",),
        advice="p2pdiag reserved with one identity and dialed it through the relay from another: the relay "
        "accepts listeners but nobody can reach them through it. Check the relay's logs and resource "
        "limits (circuits in total and per peer), and that it can open streams back to its clients.",
    )


def transfer_failed(relay: str, failed: TransferFailed) -> Finding:
    if failed.digest_matched is None:  # no answer, or a trace from before the count and digest were kept
        corrupted = failed.error_kind is ErrorKind.MALFORMED and failed.counted_bytes is None
    else:  # a short payload did not all arrive; only a full-length one with another digest arrived changed
        corrupted = not failed.digest_matched and failed.counted_bytes == failed.payload_bytes
    if corrupted:
        # the far end counted the bytes and hashed them: they arrived, changed (no Noise on the loop)
        return Finding(
            code=Code.RELAY_TRANSFER_FAILED,
            severity=Severity.ERROR,
            title="Data pushed through the relay arrived changed",
            evidence=(f"{relay}: {fmt_bytes(failed.payload_bytes)}: {failed.error}",
                      f"after {failed.duration_s:.2f} s"),
            advice="A relay must pass bytes through unchanged. Noise on a real relayed connection turns this "
            "into failed decryption and a closed connection, every time. Take the relay out of service and "
            "check its host (memory, a middlebox rewriting the traffic) and its software.",
            data={"corrupted": True},
        )
    return Finding(
        code=Code.RELAY_TRANSFER_FAILED,
        severity=Severity.WARNING,
        title="Data pushed through the relay did not all arrive",
        evidence=(f"{relay}: {fmt_bytes(failed.payload_bytes)}: {failed.error_kind.value}: {failed.error}",
                  f"after {failed.duration_s:.2f} s"),
        advice="The payload stayed well inside the announced data limit, so the relay (or the path to it) "
        "lost or cut the data early. Run again with --measure-limits to see where the relay really cuts.",
        confidence=Confidence.LIKELY,
        settle="--measure-limits, and the relay's own logs for this circuit",
    )


def limit_early(relay: str, kind: str, what: str, announced: str) -> Finding:
    return Finding(
        code=Code.RELAY_LIMIT_EARLY,
        severity=Severity.WARNING,
        title=f"The relay cut the circuit before its announced {kind} limit ({announced})",
        evidence=(f"{relay}: {what}",),
        advice="Clients plan with the announced Limit; this relay cuts earlier, so relayed connections die "
        "sooner than they expect. Plan for the measured value, or report the mismatch to the relay's operator.",
    )


def limit_not_enforced(relay: str, kind: str, what: str) -> Finding:
    return Finding(
        code=Code.RELAY_LIMIT_NOT_ENFORCED,
        severity=Severity.INFO,
        title=f"The relay did not cut the circuit at its announced {kind} limit",
        evidence=(f"{relay}: {what}",),
        advice="The relay is more generous than it says (or enforces the limit only when data flows, as "
        "py-libp2p relays do for the duration). Clients should still plan with the announced limit.",
        confidence=Confidence.LIKELY,
    )


def keeps_reservation(relay: str, status: str, attempts: int) -> Finding:
    return Finding(
        code=Code.RELAY_KEEPS_RESERVATION,
        severity=Severity.WARNING,
        title="The relay still treats a reservation as live after its holder disconnected",
        evidence=((f"{relay}: HOP CONNECT to the disconnected peer answered {status}, not NO_RESERVATION ({attempts} "
                  f"attempt{'s' if attempts != 1 else ''})"),),
        advice="A reservation lives only while its holder's connection does (circuit-v2 spec). Dialers of a "
        "peer that left get a misleading answer and wait for a connection that cannot come. Upgrade the relay.",
    )


GO_RESERVATIONS_PER_IP = 8  # go-libp2p's relay: MaxReservationsPerIP's default (docs/relays.md)


def slots_full(relay: str, asked: int, granted: int, refusal: ReservationFailed) -> Finding:
    """A reservation refused after GRANTED more. Every identity relay-check opens shares this machine's
    address, and a per-IP limit refuses with the same status as full slots: when the count is go-libp2p's
    per-IP default, that is named as likely as the slots."""
    per_ip = GO_RESERVATIONS_PER_IP in (granted, granted + 1)
    title = (f"The relay refused reservations after {granted} more (of {asked} asked): its "
             f"{GO_RESERVATIONS_PER_IP}-per-IP limit, or its slots are full" if per_ip
             else f"The relay ran out of reservation slots after {granted} more (of {asked} asked)")
    advice = ("Peers that try to listen through this relay now are refused. js-libp2p relays keep 15 "
              "slots, go and rust 128, py-libp2p 4: raise the relay's maximum, add relays, or shorten the "
              "reservation TTL so abandoned slots come back sooner.")
    if per_ip:
        advice = (f"A go-libp2p relay takes at most {GO_RESERVATIONS_PER_IP} reservations from one IP address "
                  "(and a limit per ASN): peers listening from other addresses are not refused by it. Check the "
                  "relay from another machine, or its resources (MaxReservations, MaxReservationsPerIP). If its "
                  "slots are full: " + advice)
    return Finding(
        code=Code.RELAY_SLOTS_FULL,
        severity=Severity.WARNING,
        title=title,
        evidence=(f"{relay}: reservation number {granted + 1} refused with {refusal.status_name}: {refusal.error}",
                  ("p2pdiag's first identity held one slot too, and relays that keep the slots of disconnected "
                  "peers still count earlier runs' reservations"),
                  ("every identity relay-check opens comes from this machine's one IP address: a relay's per-IP "
                   f"limit (go-libp2p: {GO_RESERVATIONS_PER_IP}) refuses with the same status as full slots")),
        advice=advice,
        confidence=Confidence.LIKELY if per_ip else Confidence.CERTAIN,
    )


def slots_not_freed(relay: str, status: str) -> Finding:
    return Finding(
        code=Code.RELAY_SLOTS_NOT_FREED,
        severity=Severity.WARNING,
        title="The relay keeps counting the slot of a peer that disconnected",
        evidence=((f"{relay}: after p2pdiag closed one slot holder's connection, the refused identity was "
                  f"refused again ({status})"),),
        advice="Slots come back only when reservations expire (js-libp2p: 2 h, py-libp2p: 1 h), so short-"
        "lived clients (and relay-check itself) fill the relay. Shorten the reservation TTL or raise the "
        "slot count; go-libp2p relays free the slot on disconnect.",
    )


def probe_crashed(relay: str, crashed: ProbeCrashed) -> Finding:
    return Finding(
        code=Code.RELAY_CHECK_CRASHED,
        severity=Severity.ERROR,
        title="p2pdiag hit a bug while checking this relay",
        evidence=(f"{relay}: {crashed.error_type}: {crashed.error}",),
        advice="The other relays were checked; this one's result is incomplete. Please report it with the "
        "trace (--trace FILE).",
    )


def incomplete(relay: str, why: str) -> Finding:
    return Finding(
        code=Code.RELAY_CHECK_INCOMPLETE,
        severity=Severity.ERROR,
        title="The relay's check did not finish",
        evidence=(f"{relay}: {why}",),
        advice="The relay answered too slowly for every phase to run. Give more time with --timeout, or "
        "look at the steps above for the one that waited.",
    )


def entries_rejected(bad: list[EntryRejected]) -> Finding:
    return Finding(
        code=Code.RELAY_ENTRY_REJECTED,
        severity=Severity.ERROR,
        title=f"{len(bad)} entr{'ies' if len(bad) != 1 else 'y'} of the relay list could not be checked",
        evidence=tuple(f"{e.source}:{e.line}: {e.error}" for e in bad),
        advice="Each line should be one relay address ending in /p2p/<relay peer id>, like "
        "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW… ('#' starts a comment). Fix these lines; the other "
        "relays were checked.",
    )
