"""Where p2pdiag reaches into aioice (asyncio side). aioice has no public hook for any of this.

Every private name p2pdiag depends on is used here and nowhere else, and
tests/webrtc/test_aioice_pins.py (for mDNS: test_mdns_chromium.py) pin them against the installed
aioice 0.13:

- `aioice.stun.RETRY_RTO` / `RETRY_MAX`: the STUN retransmit schedule, module globals. Set in
  `set_stun_retransmits` only, and recorded in the trace by the caller.
- `Connection.check_state(pair, state)`: the one method through which every pair state change
  goes (called as `self.check_state`, so an instance attribute wraps it for one connection only).
- `Connection.gather_candidates`, `._protocols`, `._local_candidates`: to add a 127.0.0.1 host
  candidate, which `get_host_addresses` leaves out.
- `Connection._check_list`, `._nominated`: the pairs and the selected one.
- `aiortc RTCIceTransport._connection`: the aioice connection behind a peer connection.
- `aioice.mdns.MDnsProtocol.datagram_received` and `.queries`: to resolve a browser's `.local`
  candidates from answers aioice drops (`resolve_mdns_leniently`).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aioice.mdns
import aioice.stun
import dns.name
from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import CandidatePair, StunProtocol

LOOPBACK = "127.0.0.1"
# A loopback candidate only helps when the peer is on the same host, so it is the last choice.
LOOPBACK_LOCAL_PREFERENCE = 0
_MAX_NAME_JUMPS = 32  # compression pointers followed in one name: more is a loop


def set_stun_retransmits(rto_s: float, retransmits: int) -> tuple[float, int]:
    """Set aioice's process-wide STUN retransmit schedule; returns the values now in force."""
    aioice.stun.RETRY_RTO = rto_s
    aioice.stun.RETRY_MAX = retransmits
    return aioice.stun.RETRY_RTO, aioice.stun.RETRY_MAX


def connection_of(pc: Any) -> Connection | None:
    """The aioice connection carrying a peer connection's data channels."""
    sctp = pc.sctp
    if sctp is None:
        return None
    return sctp.transport.transport._connection


@dataclass(frozen=True, slots=True)
class PairView:
    local_address: str
    local_port: int
    local_type: str
    remote_address: str
    remote_port: int
    remote_type: str
    protocol: str
    state: str  # aioice CandidatePair.State name, e.g. IN_PROGRESS
    nominated: bool


def view(pair: CandidatePair) -> PairView:
    local, remote = pair.local_candidate, pair.remote_candidate
    return PairView(local.host, local.port, local.type, remote.host, remote.port, remote.type,
                    local.transport.lower(), pair.state.name, bool(pair.nominated))


def watch_pairs(connection: Connection, on_change: Callable[[PairView, str], None]) -> None:
    """Call `on_change(pair after, state before)` on every pair state change of this connection."""
    original = connection.check_state

    def check_state(pair: CandidatePair, state: CandidatePair.State) -> None:
        before = pair.state.name
        original(pair, state)
        on_change(view(pair), before)

    connection.check_state = check_state  # type: ignore[method-assign]


def pairs(connection: Connection) -> list[PairView]:
    return [view(p) for p in connection._check_list]


def selected(connection: Connection, component: int = 1) -> PairView | None:
    pair = connection._nominated.get(component)
    return view(pair) if pair is not None else None


def restrict_host_addresses(connection: Connection, allowed: tuple[str, ...]) -> None:
    """Gather host candidates only on `allowed` local addresses (aioice uses every interface)."""
    original = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str], timeout: int = 5) -> list[Candidate]:
        return await original(component=component, addresses=[a for a in addresses if a in allowed],
                              timeout=timeout)

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


def add_loopback_on_gather(connection: Connection, on_added: Callable[[Candidate], None]) -> None:
    """After aioice gathers, add a host candidate on 127.0.0.1 for each component."""
    original = connection.gather_candidates

    async def gather_candidates() -> None:
        first = not connection._local_candidates_start
        await original()
        if first:
            for component in sorted(connection._components):
                candidate = await _bind(connection, component)
                if candidate is not None:
                    on_added(candidate)

    connection.gather_candidates = gather_candidates  # type: ignore[method-assign]


async def _bind(connection: Connection, component: int) -> Candidate | None:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(connection),
                                                                  local_addr=(LOOPBACK, 0))
    except OSError:
        return None  # no loopback interface: nothing to add
    host, port = transport.get_extra_info("sockname")[:2]
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host", local_pref=LOOPBACK_LOCAL_PREFERENCE),
        host=host,
        port=port,
        type="host",
    )
    connection._protocols.append(protocol)
    connection._local_candidates.append(protocol.local_candidate)
    return protocol.local_candidate


def resolve_mdns_leniently() -> None:
    """Let aioice resolve a browser's `.local` candidates from the answers it now drops; idempotent.

    Chromium answers an mDNS query for its candidate's name with the A record and an NSEC record
    whose next-domain name is compressed, as RFC 6762 section 18.14 allows. dnspython refuses
    compression in NSEC rdata, so aioice drops the whole answer and the name "does not resolve"
    although the browser answered. aioice's own handler still runs first; then any query still
    waiting is answered from the A and AAAA records of the same response, in any section (for
    Chromium's IPv6 name the AAAA comes as an additional record, RFC 6762 section 6.2).
    """
    original = aioice.mdns.MDnsProtocol.datagram_received
    if getattr(original, "_p2pdiag_lenient", False):
        return

    def datagram_received(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
        original(self, data, addr)
        if not self.queries:
            return
        for name, address in mdns_response_addresses(bytes(data)):
            for future in self.queries.pop(name, ()):
                if not future.done():
                    future.set_result(address)

    datagram_received._p2pdiag_lenient = True  # type: ignore[attr-defined]
    datagram_received.__wrapped__ = original  # type: ignore[attr-defined]
    aioice.mdns.MDnsProtocol.datagram_received = datagram_received  # type: ignore[method-assign]


def mdns_response_addresses(data: bytes) -> list[tuple[dns.name.Name, str]]:
    """(name, address) of every A and AAAA record in a DNS response, from any section.

    Reads only what it needs, and follows a compressed name anywhere; the rdata of other types
    is skipped unread. A query, or a message cut short or malformed anywhere, gives [].
    """
    try:
        _, flags, questions, *counts = struct.unpack_from("!6H", data, 0)
        if not flags & 0x8000:  # QR: a query, not a response
            return []
        offset = 12
        for _ in range(questions):
            offset = _read_name(data, offset)[1] + 4
        found = []
        for _ in range(sum(counts)):
            name, offset = _read_name(data, offset)
            rtype, _, _, length = struct.unpack_from("!HHIH", data, offset)
            offset += 10
            rdata = data[offset:offset + length]
            if len(rdata) != length:
                return []
            offset += length
            if rtype == 1 and length == 4:
                found.append((name, socket.inet_ntop(socket.AF_INET, rdata)))
            elif rtype == 28 and length == 16:
                found.append((name, socket.inet_ntop(socket.AF_INET6, rdata)))
        return found
    except (struct.error, IndexError, ValueError, dns.name.NameTooLong, dns.name.LabelTooLong):
        return []


def _read_name(data: bytes, offset: int) -> tuple[dns.name.Name, int]:
    """The name at `offset` and the offset after it; compression pointers must point backwards."""
    labels: list[bytes] = []
    end = None
    jumps = 0
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            pointer = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            if pointer >= offset or jumps > _MAX_NAME_JUMPS:
                raise ValueError("bad compression pointer")
            if end is None:
                end = offset + 2
            offset = pointer
        elif length & 0xC0:
            raise ValueError("unknown label type")
        elif length == 0:
            labels.append(b"")
            return dns.name.Name(labels), end if end is not None else offset + 1
        else:
            label = data[offset + 1:offset + 1 + length]
            if len(label) != length:
                raise ValueError("label cut short")
            labels.append(label)
            offset += 1 + length
