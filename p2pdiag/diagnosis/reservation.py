"""relay-check's judgement of a reservation reply: are its addresses dialable, its lifetime plausible,
its Limit useful, its voucher sound. Pure; the findings these lead to are in findings/relaycheck.py.
"""

from __future__ import annotations

import ipaddress

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.findings.relaycheck import VOUCHER_CODE
from p2pdiag.diagnosis.limits import DurationReading, fmt_bytes, fmt_seconds
from p2pdiag.wire.envelope import Check, CheckResult, VoucherReport

TTL_PLAUSIBLE_S = (120.0, 7 * 24 * 3600.0)  # outside this a reservation TTL is a mistake or a trap


MIN_USEFUL_DATA_BYTES = 8 * 1024  # Noise + yamux + identify over a circuit take about this much


MIN_USEFUL_DURATION_S = 10.0  # too short to set up a direct connection over the circuit


def _private_only(addrs: list[str]) -> bool:
    hosts = []
    for a in addrs:
        parts = a.split("/")
        if len(parts) > 2 and parts[1] in ("ip4", "ip6"):
            try:
                hosts.append(ipaddress.ip_address(parts[2]))
            except ValueError:
                return False
        else:
            return False  # a dns name, or something else: not known to be private
    return bool(hosts) and all(h.is_private or h.is_loopback or h.is_link_local for h in hosts)


def _strip_p2p(addr: str) -> str:
    return addr.split("/p2p/", 1)[0]


def addr_problems(addrs: tuple[str, ...], dialed: str, relay_peer_id: str) -> list[str]:
    """What is wrong with Reservation.addrs, the addresses a client advertises as its circuit addresses."""
    if not addrs:
        return ["no addresses: clients must build their /p2p-circuit addresses from what they already know"]
    problems = []
    for a in addrs:
        if a.startswith("<undecodable"):
            problems.append(f"{a}: not a multiaddr")
        elif "/p2p-circuit" in a:
            problems.append(f"{a}: a relayed address, useless for reaching the relay")
        elif a.startswith(("/ip4/0.0.0.0/", "/ip6/::/")):
            problems.append(f"{a}: an unspecified (wildcard) address nobody can dial")
        elif "/p2p/" in a and a.rsplit("/p2p/", 1)[1] != relay_peer_id:
            problems.append(f"{a}: names another peer id than the relay's")
    stripped = {_strip_p2p(a) for a in addrs}
    if not dialed.startswith(("/dns", "/dnsaddr")) and _strip_p2p(dialed) not in stripped:
        problems.append(f"the address p2pdiag reached the relay at ({_strip_p2p(dialed)}) is not among them")
    if _private_only([_strip_p2p(dialed)]) is False and _private_only(sorted(stripped)):
        problems.append("only private or loopback addresses, while the relay was reached at a public one")
    return problems


def too_small(reading: DurationReading, data: int | None) -> str | None:
    if data and data < MIN_USEFUL_DATA_BYTES:
        return (f"data limit {fmt_bytes(data)}: less than a Noise handshake and identify need "
                f"(~{fmt_bytes(MIN_USEFUL_DATA_BYTES)})")
    if reading.effective_s and reading.effective_s < MIN_USEFUL_DURATION_S:
        return f"duration limit {fmt_seconds(reading.effective_s)}: too short to set up a direct connection"
    return None


def voucher_problems(report: VoucherReport) -> list[list[CheckResult]]:
    """Failed checks grouped by the finding they make, in check order; an unverifiable signature last."""
    groups: dict[str, list[CheckResult]] = {}
    for r in report.failed:
        groups.setdefault(VOUCHER_CODE[r.check], []).append(r)
    sig = report.result(Check.SIGNATURE)
    envelope_ok = report.result(Check.ENVELOPE)
    if sig is not None and sig.ok is None and envelope_ok is not None and envelope_ok.ok:
        groups.setdefault(Code.VOUCHER_UNVERIFIABLE, []).append(sig)
    return list(groups.values())
