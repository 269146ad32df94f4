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
- `Connection.get_component_candidates`, `.stun_server`, `.turn_server` (and `turn_username`,
  `turn_password`, `turn_ssl`, `turn_transport`, `_transport_policy`), `aioice.ice.relayed_candidate`:
  gathering with p2pdiag's own bounds (`bound_gathering`): every STUN server asked, not only the
  first, each answer (or refusal, with its STUN error code) reported; aioice waits 5 s and keeps
  the errors to itself.
- `Connection._check_list`, `._nominated`: the pairs and the selected one.
- `StunProtocol.send_stun`, `.error_received` (instance attributes wrap them, for the sockets a
  check uses): asyncio's datagram transport hands a `sendto()` that failed to `error_received`,
  which aioice only logs; `watch_sends` tells the caller which sends the OS refused
  (`SendLedger`: a local firewall's drop or reject on output is EPERM at once), and a STUN request
  while gathering ends at its refused send and retransmit (`_RequestSends`), not at its bound.
- `Candidate._network_host`: the address a remote `.local` candidate resolved to.
- `aioice.mdns.MDnsProtocol.datagram_received` and `.queries`: to resolve a browser's `.local`
  candidates from answers aioice drops (`resolve_mdns_leniently`).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aioice.mdns
import aioice.stun
import dns.name
from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import CandidatePair, StunProtocol, TransportPolicy, relayed_candidate

LOOPBACK = "127.0.0.1"
# A loopback candidate only helps when the peer is on the same host, so it is the last choice.
LOOPBACK_LOCAL_PREFERENCE = 0
_MAX_NAME_JUMPS = 32  # compression pointers followed in one name: more is a loop


def set_stun_retransmits(rto_s: float, retransmits: int) -> tuple[float, int]:
    """Set aioice's process-wide STUN retransmit schedule; returns the values now in force."""
    aioice.stun.RETRY_RTO = rto_s
    aioice.stun.RETRY_MAX = retransmits
    return aioice.stun.RETRY_RTO, aioice.stun.RETRY_MAX


def resolved_address(candidate: Candidate) -> str | None:
    """The address aioice resolved a remote candidate's host to (a `.local` name's answer)."""
    return getattr(candidate, "_network_host", None)


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


# A send the kernel refused with EPERM was dropped by this host's own packet filter (nftables or
# iptables `drop` or `reject` on output) or a cgroup egress program: this host's policy, nothing on
# the way and nothing of the peer's. Other send errors (ENETUNREACH, EINVAL: a loopback socket and a
# public address) say that socket cannot reach that address, not that UDP is blocked.
REFUSED_ERRNOS = frozenset({errno.EPERM})
# Sends of one check that must all be refused before a pair counts as refused: the first and its
# first retransmit (0.1 s later), so one packet refused by a rate limit is not taken for a rule.
REFUSED_SENDS = 2
# (socket, address) pairs tallied: aioice answers a check from any address, so a peer spraying them
# from many ports must not grow this without end; one not tallied keeps ICE from ending early.
MAX_TALLIED = 1024


@dataclass(frozen=True, slots=True)
class SendFailure:
    """The first send from one local socket to one address that failed with one errno."""

    local: tuple[str, int]
    remote: tuple[str, int]
    errno_name: str  # "EPERM", "ENETUNREACH" ...
    error: str  # the OS's words
    refused: bool  # errno in REFUSED_ERRNOS: this host's packet filter refused it


@dataclass(frozen=True, slots=True)
class ChecksRefused:
    """Every pair of the check list had its sends refused by this host (or could not route), and none
    went out: the checks cannot succeed, whatever the peer does."""

    pairs: int  # pairs in the check list
    refused_pairs: int  # every send refused (REFUSED_ERRNOS), at least REFUSED_SENDS of them
    unroutable_pairs: int  # every send failed with another error (no route from that socket)
    sends_refused: int  # refused sends, all pairs together
    errno_name: str  # the refusal's errno (EPERM)
    after_s: float  # from the first check's first send to the last refusal that settled it


@dataclass
class _Tally:
    sent: int = 0
    refused: int = 0
    other: int = 0


class SendLedger:
    """What became of each STUN send (check, retransmit, response) from the sockets the checks use."""

    def __init__(self, connection: Connection, on_failure: Callable[[SendFailure], None],
                 on_refused: Callable[[ChecksRefused], None]) -> None:
        self._connection = connection
        self._on_failure = on_failure
        self._on_refused = on_refused
        self._tallies: dict[tuple[tuple[str, int], tuple[str, int]], _Tally] = {}
        self._reported: set[tuple[tuple[str, int], tuple[str, int], str]] = set()
        self._first_send: float | None = None
        self._errno_name = ""
        self.concluded: ChecksRefused | None = None

    def sent(self, local: tuple[str, int], remote: tuple[str, int], exc: BaseException | None) -> None:
        now = asyncio.get_running_loop().time()
        if self._first_send is None:
            self._first_send = now
        tally = self._tallies.get((local, remote))
        if tally is None:
            if len(self._tallies) >= MAX_TALLIED:
                return
            tally = self._tallies[(local, remote)] = _Tally()
        if exc is None:
            tally.sent += 1
            return
        code = exc.errno if isinstance(exc, OSError) else None
        name = errno.errorcode.get(code, type(exc).__name__) if code is not None else type(exc).__name__
        refused = code in REFUSED_ERRNOS
        if refused:
            tally.refused += 1
            self._errno_name = name
        else:
            tally.other += 1
        if (local, remote, name) not in self._reported:
            self._reported.add((local, remote, name))
            self._on_failure(SendFailure(local, remote, name, str(exc), refused))
        self.settle(now)

    def settle(self, now: float | None = None) -> None:
        """Conclude once every pair's sends were refused (or unroutable), at least one refused."""
        if self.concluded is not None:
            return
        checks = list(self._connection._check_list)
        if not checks:
            return
        refused = unroutable = 0
        for pair in checks:
            if pair.state == CandidatePair.State.SUCCEEDED:
                return
            tally = self._tallies.get(((pair.local_candidate.host, pair.local_candidate.port), pair.remote_addr))
            if tally is None or tally.sent:
                return  # not tried yet, or something went out: the peer may yet answer
            if tally.refused >= REFUSED_SENDS and not tally.other:
                refused += 1
            elif tally.other and not tally.refused:
                unroutable += 1
            else:
                return  # refused once so far, or a mix: not settled
        if not refused:
            return  # no route anywhere is not a firewall
        now = asyncio.get_running_loop().time() if now is None else now
        self.concluded = ChecksRefused(len(checks), refused, unroutable,
                                       sum(t.refused for t in self._tallies.values()), self._errno_name,
                                       now - (self._first_send or now))
        self._on_refused(self.concluded)


def watch_sends(connection: Connection, on_failure: Callable[[SendFailure], None],
                on_refused: Callable[[ChecksRefused], None]) -> SendLedger:
    """Watch every send of the sockets the connectivity checks use (each wrapped when its first check
    starts, before the check's first send); `on_failure` for the first failure per socket, address
    and errno, `on_refused` once when every pair's sends were refused."""
    ledger = SendLedger(connection, on_failure, on_refused)
    original_check_state = connection.check_state

    def check_state(pair: CandidatePair, state: CandidatePair.State) -> None:
        if state == CandidatePair.State.IN_PROGRESS:
            _watch_protocol(pair.protocol, ledger)
        original_check_state(pair, state)
        if state == CandidatePair.State.FAILED:
            ledger.settle()

    connection.check_state = check_state  # type: ignore[method-assign]
    return ledger


def _watch_protocol(protocol: StunProtocol, ledger: SendLedger | _RequestSends) -> None:
    if getattr(protocol, "_p2pdiag_sends", None) is ledger:
        return
    protocol._p2pdiag_sends = ledger  # type: ignore[attr-defined]
    send_stun, error_received = protocol.send_stun, protocol.error_received
    caught: list[BaseException] = []

    def error(exc: Exception) -> None:
        caught.append(exc)
        error_received(exc)

    def send(message: aioice.stun.Message, addr: tuple[str, int]) -> None:
        caught.clear()
        send_stun(message, addr)
        # asyncio's transport calls error_received inside sendto() when the OS refuses the send at once
        local = protocol.local_candidate
        ledger.sent((local.host, local.port), (addr[0], addr[1]), caught[0] if caught else None)
        caught.clear()

    protocol.error_received = error  # type: ignore[method-assign]
    protocol.send_stun = send  # type: ignore[method-assign]


def pairs(connection: Connection) -> list[PairView]:
    return [view(p) for p in connection._check_list]


def selected(connection: Connection, component: int = 1) -> PairView | None:
    pair = connection._nominated.get(component)
    return view(pair) if pair is not None else None


def restrict_host_addresses(connection: Connection, allowed: tuple[str, ...]) -> None:
    """Gather host candidates only on `allowed` local addresses (aioice uses every interface)."""
    original = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:  # noqa: ASYNC109  (aioice's own signature)
        return await original(component=component, addresses=[a for a in addresses if a in allowed],
                              timeout=timeout)

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class ServerQuery:
    """What one STUN binding or TURN allocation gave, for the trace."""

    server: str  # the URL as given
    kind: str  # "stun" | "turn"
    local: tuple[str, int] | None  # the socket asked from (STUN); None for TURN, which opens its own
    outcome: str  # "answered" | "error_response" | "no_answer" | "failed"
    mapped: tuple[str, int] | None  # XOR-MAPPED-ADDRESS (STUN) or XOR-RELAYED-ADDRESS (TURN)
    error_code: int | None
    error_reason: str | None
    error: str | None
    duration_s: float
    bound_s: float
    send_refused: bool = False  # this host refused to send the request (EPERM), at once and again


@dataclass(frozen=True, slots=True)
class StunServer:
    url: str
    host: str
    port: int


def bound_gathering(connection: Connection, stun_servers: Sequence[StunServer], turn_url: str | None,
                    stun_bound_s: float, turn_bound_s: float,
                    on_query: Callable[[ServerQuery], None],
                    on_end: Callable[[float, tuple[ServerQuery, ...]], None]) -> None:
    """Gather with p2pdiag's bounds instead of aioice's fixed 5 s, and report every server's answer.

    aioice asks only the first STUN server, waits up to 5 s for it, and drops errors. Here host
    candidates come from aioice as before (with its servers off), then every IPv4 host socket asks
    every STUN server (RFC 8445 section 5.1.1.3: one srflx per base and server, each with its own
    foundation, so the peer sees whether the NAT mapped one base to one port or to many) and TURN
    allocates; each waits at most its bound, since a NAT or a server answers within a round trip.
    """
    original = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:  # noqa: ASYNC109  (aioice's own signature)
        loop = asyncio.get_running_loop()
        began = loop.time()
        first_stun, turn_server = connection.stun_server, connection.turn_server
        connection.stun_server = connection.turn_server = None
        try:
            candidates = await original(component=component, addresses=addresses, timeout=timeout)
        finally:
            connection.stun_server, connection.turn_server = first_stun, turn_server
        ours = {id(c) for c in candidates}
        hosts = [p for p in connection._protocols
                 if id(p.local_candidate) in ours and ipaddress.ip_address(p.local_candidate.host).version == 4]
        lookups = {name: _lookup(loop, name) for name in {s.host for s in stun_servers}} if hosts else {}
        jobs = [_srflx(p, server, lookups[server.host], stun_bound_s) for p in hosts for server in stun_servers]
        if turn_server is not None and turn_url is not None:
            jobs.append(_relay(connection, component, turn_url, turn_bound_s))
        results = await asyncio.gather(*jobs)
        for query, candidate, protocol in results:
            on_query(query)
            if candidate is not None:
                candidates.append(candidate)
            if protocol is not None:
                connection._protocols.append(protocol)
        on_end(loop.time() - began, tuple(q for q, _, _ in results))
        return candidates

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


def _refusal(exc: BaseException) -> tuple[int | None, str | None]:
    response = getattr(exc, "response", None)
    if response is None or "ERROR-CODE" not in response.attributes:
        return None, None
    code, reason = response.attributes["ERROR-CODE"]
    return int(code), str(reason)


def _lookup(loop: asyncio.AbstractEventLoop, host: str) -> asyncio.Future[str]:
    """One resolution of a STUN server's name, shared by every host socket that asks that server.
    Each asker still waits for it within its own bound; its failure is read here too, so that it
    is not reported as never retrieved when every asker's bound ran out first."""
    future = loop.run_in_executor(None, socket.gethostbyname, host)
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


async def _srflx(protocol: StunProtocol, server: StunServer, address_of: asyncio.Future[str], bound_s: float
                 ) -> tuple[ServerQuery, Candidate | None, None]:
    loop = asyncio.get_running_loop()
    base = protocol.local_candidate
    began = loop.time()

    refused: list[OSError] = []

    async def ask() -> tuple[str, int]:
        address = await asyncio.shield(address_of)  # one asker's timeout does not cancel it for the others
        request = aioice.stun.Message(message_method=aioice.stun.Method.BINDING,
                                      message_class=aioice.stun.Class.REQUEST)
        sends = _RequestSends((address, server.port), loop.create_future())
        _watch_protocol(protocol, sends)
        asked = asyncio.ensure_future(protocol.request(request, (address, server.port),
                                                       retransmissions=_retransmits_spanning(bound_s)))
        asked.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            await asyncio.wait({asked, sends.settled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not asked.done():
                asked.cancel()
        if not asked.done() or asked.cancelled():
            refused.append(sends.settled.result())
            raise SendRefusedError(f"this host refused to send it ({refused[0]})")
        response, _ = asked.result()
        return response.attributes["XOR-MAPPED-ADDRESS"][:2]

    outcome, mapped, code, reason, error = await _bounded(ask(), bound_s)
    query = ServerQuery(server.url, "stun", (base.host, base.port), outcome, mapped, code, reason, error,
                        loop.time() - began, bound_s, send_refused=bool(refused))
    if mapped is None:
        return query, None, None
    return query, Candidate(
        # the server is part of the foundation (RFC 8445 section 5.1.1.3): one srflx per base and server
        foundation=candidate_foundation("srflx", "udp", f"{base.host}|{server.host}:{server.port}"),
        component=base.component,
        transport=base.transport,
        priority=candidate_priority(base.component, "srflx"),
        host=mapped[0],
        port=mapped[1],
        type="srflx",
        related_address=base.host,
        related_port=base.port,
    ), None


class SendRefusedError(OSError):
    """This host refused every send of a STUN request (REFUSED_SENDS of them), none went out."""


@dataclass
class _RequestSends:
    """The sends of one STUN request to one address (through `_watch_protocol`): `settled` gets the
    refusal once REFUSED_SENDS of them were refused and none went out."""

    to: tuple[str, int]
    settled: asyncio.Future[OSError]
    refused: int = 0
    went_out: int = 0

    def sent(self, local: tuple[str, int], remote: tuple[str, int], exc: BaseException | None) -> None:
        if remote != self.to or self.settled.done():
            return
        if exc is None:
            self.went_out += 1
        elif isinstance(exc, OSError) and exc.errno in REFUSED_ERRNOS and not self.went_out:
            self.refused += 1
            if self.refused >= REFUSED_SENDS:
                self.settled.set_result(exc)


def _retransmits_spanning(bound_s: float) -> int:
    """Retransmits, on aioice's schedule (RETRY_RTO, doubling), that keep asking until `bound_s`:
    the bound, not the process-wide check schedule, decides when a STUN server has not answered."""
    n, waited = 0, aioice.stun.RETRY_RTO
    while waited < bound_s and n < 16:
        n += 1
        waited += aioice.stun.RETRY_RTO * 2 ** n
    return n


async def _relay(connection: Connection, component: int, url: str, bound_s: float
                 ) -> tuple[ServerQuery, Candidate | None, StunProtocol | None]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    got: list[tuple[Candidate, StunProtocol]] = []

    async def allocate() -> tuple[str, int]:
        candidate, protocol = await relayed_candidate(
            component=component,
            hide_related_address=connection._transport_policy == TransportPolicy.RELAY,
            protocol_factory=lambda: StunProtocol(connection),
            turn_server=connection.turn_server,
            turn_username=connection.turn_username,
            turn_password=connection.turn_password,
            turn_ssl=connection.turn_ssl,
            turn_transport=connection.turn_transport,
        )
        got.append((candidate, protocol))
        return candidate.host, candidate.port

    outcome, mapped, code, reason, error = await _bounded(allocate(), bound_s)
    query = ServerQuery(url, "turn", None, outcome, mapped, code, reason, error, loop.time() - began, bound_s)
    return (query, *got[0]) if got else (query, None, None)


async def _bounded(coro: Any, bound_s: float
                   ) -> tuple[str, tuple[str, int] | None, int | None, str | None, str | None]:
    """(outcome, mapped, error code, reason, error) of one server exchange, given at most `bound_s`."""
    try:
        mapped = await asyncio.wait_for(coro, bound_s)
    except (TimeoutError, aioice.stun.TransactionTimeout):
        return "no_answer", None, None, None, None
    except aioice.stun.TransactionFailed as exc:
        code, reason = _refusal(exc)
        return "error_response", None, code, reason, str(exc)
    except (OSError, KeyError, ValueError, ConnectionError, aioice.stun.TransactionError) as exc:
        code, reason = _refusal(exc)
        return ("error_response" if code else "failed"), None, code, reason, f"{type(exc).__name__}: {exc}"
    return "answered", (str(mapped[0]), int(mapped[1])), None, None, None


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
