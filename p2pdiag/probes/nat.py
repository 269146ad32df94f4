"""`p2pdiag nat`: the NAT's mapping and filtering, probed in the style of RFC 5780 (section 4).

A probe records what each STUN binding test saw (`NatTest`), nothing more; diagnosis/network.py
(`nat_behaviour`) judges them. Tests, each from one UDP socket so that the NAT keeps one base:

- mapping (one socket): I to the primary address; with the server's OTHER-ADDRESS, II to the
  other IP and primary port, then III to the other IP and other port (RFC 5780 section 4.3).
  Without OTHER-ADDRESS, a second `--stun` server stands in for test II.
- filtering (a fresh socket, so the mapping tests opened no filter): I to the primary, then a
  request asking the server to answer from the other IP and port (CHANGE-REQUEST 0x06), then from
  the other port only (0x02) (section 4.4).
"""

from __future__ import annotations

import os
import socket

import trio

from p2pdiag.trace.events import NatTestCompleted
from p2pdiag.trace.recorder import Recorder
from p2pdiag.wire.stun import (
    CHANGE_IP,
    CHANGE_PORT,
    Endpoint,
    NatTest,
    StunDecodeError,
    binding_request,
    event_fields,
    parse_response,
    parse_stun_url,
)

FIRST_RTO_S = 0.1  # retransmit after 0.1 s, doubling (RFC 5389 section 7.2.1, shortened for a probe)
TEST_TIMEOUT_S = 1.5  # one test's wait for an answer: a filtered answer is silence, so this is paid per filter test


async def _transact(sock: trio.socket.SocketType, name: str, server: Endpoint, change: int,
                    timeout_s: float) -> NatTest:
    transaction_id = os.urandom(12)
    request = binding_request(transaction_id, change)
    local = sock.getsockname()[:2]
    start = trio.current_time()
    rto = FIRST_RTO_S
    with trio.move_on_after(timeout_s):
        while True:
            try:
                await sock.sendto(request, server)
            except OSError:  # no route, network down: as good as no answer, and the evidence says so
                return NatTest(name, server, change, local, False)
            with trio.move_on_after(rto):
                while True:
                    data, source = await sock.recvfrom(2048)
                    try:
                        got = parse_response(data, transaction_id)
                    except StunDecodeError:
                        continue  # a stray or late answer to an earlier test
                    return NatTest(name, server, change, local, True, got["mapped"], got.get("origin", source[:2]),
                                   got.get("other"), trio.current_time() - start)
            rto *= 2
    return NatTest(name, server, change, local, False)


def _socket(family: int) -> trio.socket.SocketType:
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    return sock


async def probe(servers: list[Endpoint], timeout_s: float = TEST_TIMEOUT_S) -> list[NatTest]:
    """Run the mapping and filtering tests against these STUN servers (the first is primary)."""
    primary = servers[0]
    family = socket.AF_INET6 if ":" in primary[0] else socket.AF_INET
    tests: list[NatTest] = []
    with _socket(family) as sock:
        await sock.bind(("", 0))
        first = await _transact(sock, "mapping-1", primary, 0, timeout_s)
        tests.append(first)
        if first.answered and first.other is not None:
            other_ip, other_port = first.other
            tests.append(await _transact(sock, "mapping-2", (other_ip, primary[1]), 0, timeout_s))
            if tests[-1].answered and tests[-1].mapped != first.mapped:
                tests.append(await _transact(sock, "mapping-3", (other_ip, other_port), 0, timeout_s))
        elif first.answered and len(servers) > 1:
            tests.append(await _transact(sock, "mapping-2", servers[1], 0, timeout_s))
    if first.answered and first.other is not None:
        with _socket(family) as sock:
            await sock.bind(("", 0))
            tests.append(await _transact(sock, "filtering-1", primary, 0, timeout_s))
            if tests[-1].answered:
                tests.append(await _transact(sock, "filtering-2", primary, CHANGE_IP | CHANGE_PORT, timeout_s))
                if not tests[-1].answered:
                    tests.append(await _transact(sock, "filtering-3", primary, CHANGE_PORT, timeout_s))
    return tests


async def resolve(url: str) -> Endpoint:
    """A stun: URL's server as an IP address and port; ValueError if it is not one, OSError if it does not resolve."""
    host, port = parse_stun_url(url)
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    return infos[0][4][0], port


async def record_probe(urls: list[str], rec: Recorder, timeout_s: float = TEST_TIMEOUT_S) -> list[NatTest]:
    """The probe against these STUN servers, each test recorded as a `nat.test_completed` event.

    `dial` runs it beside the relay path when two or more STUN servers are given; a server that
    does not resolve leaves the probe out (the upgrade's own gathering will show it)."""
    try:
        servers = [await resolve(u) for u in urls]
    except (ValueError, OSError):
        return []
    try:
        tests = await probe(servers, timeout_s)
    except OSError:  # no socket to be had: leave the probe out rather than end the dial
        return []
    for t in tests:
        rec.record(NatTestCompleted, **event_fields(t))
    return tests
