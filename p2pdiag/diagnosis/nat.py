"""`p2pdiag nat`: the RFC 5780 tests judged, as RFC 4787 names NAT behaviour (mapping and filtering).

Pure: the tests `p2pdiag.probes.nat.probe` ran in, a `NatBehaviour` out. The `nat` command shows
it; a dial that probed its NAT (two STUN servers) has network.py read it beside the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pdiag.exitcodes import ExitCode

if TYPE_CHECKING:
    from p2pdiag.wire.stun import NatTest


def address_port(address: str, port: int | None) -> str:
    """"[::1]:3478", "192.0.2.1:3478"."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


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

    @property
    def exit_code(self) -> ExitCode:
        """`p2pdiag nat`'s: no STUN answer at all is as unreachable as a peer gets; anything else told something."""
        return ExitCode.UNREACHABLE if self.mapping == NO_UDP else ExitCode.OK


def nat_behaviour(tests: list[NatTest]) -> NatBehaviour:
    """Mapping and filtering (RFC 4787 terms) from the tests `p2pdiag.probes.nat.probe` ran."""
    by = {t.name: t for t in tests}
    first_test = by.get("mapping-1")
    if first_test is None or not first_test.answered:
        server = address_port(*first_test.server) if first_test else "?"
        return NatBehaviour(NO_UDP, NO_UDP, None, (f"no answer from {server} to any retransmit",),
                            "the same probe from another network (is the server up?), or a TCP relay check")
    local_port, server, mapped = first_test.local[1], address_port(*first_test.server), address_port(*first_test.mapped)
    evidence = [f"test I: local port {local_port} → {server}: mapped {mapped}"]
    second, third = by.get("mapping-2"), by.get("mapping-3")
    settle = None
    if second is None:
        mapping = UNTESTED
        settle = "a second --stun server, or one that sends OTHER-ADDRESS (RFC 5780)"
    elif not second.answered:
        mapping = UNTESTED
        evidence.append(f"test II to {address_port(*second.server)}: no answer")
        settle = "a second STUN server that answers"
    else:
        evidence.append(f"test II → {address_port(*second.server)}: mapped {address_port(*second.mapped)}")
        if second.mapped == first_test.mapped:
            mapping = EIM
        elif first_test.other is None:
            mapping = DEPENDENT
            settle = "a STUN server with OTHER-ADDRESS (RFC 5780) tells address from address-and-port"
        elif third is not None and third.answered:
            evidence.append(f"test III → {address_port(*third.server)}: mapped {address_port(*third.mapped)}")
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
        origin = address_port(*f2.origin) if f2.origin else "?"
        evidence.append(f"an answer from the other IP and port ({origin}) came in")
    elif f3 is not None and f3.answered:
        filtering = "address-dependent"
        evidence.append("no answer from the other IP; an answer from the other port came in")
    else:
        filtering = "address-and-port-dependent"
        evidence.append("no answer from the other IP, nor from the other port: only the exact address sent to")
    return NatBehaviour(mapping, filtering, first_test.mapped, tuple(evidence), settle)
