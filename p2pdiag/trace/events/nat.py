"""Events of this network's NAT probe (`p2pdiag nat`; `dial` with two or more STUN servers)."""

from __future__ import annotations

from p2pdiag.trace.events.base import Event, event_class, register

# --- this network's NAT (`p2pdiag nat`; `dial` with two or more STUN servers) -------------------------


@register("nat.test_completed")
@event_class
class NatTestCompleted(Event):
    """One STUN binding test of the RFC 5780-style NAT probe (p2pdiag/probes/nat.py), answered or not."""

    test: str  # mapping-1 (primary), mapping-2 (other IP or 2nd server), mapping-3 (other IP and port), filtering-1..3
    server_address: str  # where the request went
    server_port: int  # its port
    change_request: int  # CHANGE-REQUEST flags asked for: 0, 2 (other port), 6 (other IP and port)
    local_port: int  # this side's UDP socket (each test family has its own)
    answered: bool  # an answer came before the test's timeout
    mapped_address: str | None  # XOR-MAPPED-ADDRESS: the NAT's public address for the socket
    mapped_port: int | None  # its port
    origin_address: str | None  # where the answer came from
    origin_port: int | None  # its port
    other_address: str | None  # OTHER-ADDRESS: the server's second IP (RFC 5780), when it sent one
    other_port: int | None  # its port
    rtt_s: float | None  # from the first request to the answer
