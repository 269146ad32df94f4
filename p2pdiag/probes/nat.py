"""`p2pdiag nat`: the NAT's mapping and filtering, probed in the style of RFC 5780 (section 4).

A probe records what each STUN binding test saw (`NatTest`), nothing more; diagnosis/network.py
(`nat_behaviour`) judges them. Tests, each from one UDP socket so that the NAT keeps one base:

- mapping (one socket): I to the primary address; with the server's OTHER-ADDRESS, II to the
  other IP and primary port, then III to the other IP and other port (RFC 5780 section 4.3).
  Without OTHER-ADDRESS, a second `--stun` server stands in for test II.
- filtering (a fresh socket, so the mapping tests opened no filter): I to the primary, then a
  request asking the server to answer from the other IP and port (CHANGE-REQUEST 0x06), then from
  the other port only (0x02) (section 4.4).

The STUN messages are built here (RFC 5389 binding requests, RFC 5780 attributes): aioice's
codec is shaped for ICE and keeps no OTHER-ADDRESS handling worth pinning.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

import trio

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003
XOR_MAPPED_ADDRESS = 0x0020
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C
CHANGE_IP = 0x04
CHANGE_PORT = 0x02

FIRST_RTO_S = 0.1  # retransmit after 0.1 s, doubling (RFC 5389 section 7.2.1, shortened for a probe)
TEST_TIMEOUT_S = 1.5  # one test's wait for an answer: a filtered answer is silence, so this is paid per filter test

Endpoint = tuple[str, int]


class StunDecodeError(ValueError):
    pass


def binding_request(transaction_id: bytes, change: int = 0) -> bytes:
    attrs = struct.pack("!HHI", CHANGE_REQUEST, 4, change) if change else b""
    return struct.pack("!HHI", BINDING_REQUEST, len(attrs), MAGIC_COOKIE) + transaction_id + attrs


def _address(value: bytes, xor: bool, transaction_id: bytes) -> Endpoint:
    if len(value) < 8:
        raise StunDecodeError("address attribute too short")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:8] if family == 1 else value[4:20]
    if family not in (1, 2) or len(raw) != (4 if family == 1 else 16):
        raise StunDecodeError(f"address family {family}")
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        raw = bytes(b ^ k for b, k in zip(raw, key))
    return socket.inet_ntop(socket.AF_INET if family == 1 else socket.AF_INET6, raw), port


def parse_response(data: bytes, transaction_id: bytes) -> dict[str, Endpoint]:
    """The addresses in a binding success response: "mapped", "origin", "other" (those present)."""
    if len(data) < 20:
        raise StunDecodeError("shorter than a STUN header")
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != MAGIC_COOKIE or data[8:20] != transaction_id:
        raise StunDecodeError("not the answer to this request")
    if kind != BINDING_SUCCESS:
        raise StunDecodeError(f"message type 0x{kind:04x}, not a binding success")
    out: dict[str, Endpoint] = {}
    offset, end = 20, min(len(data), 20 + length)
    while offset + 4 <= end:
        attr, size = struct.unpack("!HH", data[offset:offset + 4])
        value = data[offset + 4:offset + 4 + size]
        if attr == XOR_MAPPED_ADDRESS:
            out["mapped"] = _address(value, True, transaction_id)
        elif attr == MAPPED_ADDRESS:
            out.setdefault("mapped", _address(value, False, transaction_id))
        elif attr == RESPONSE_ORIGIN:
            out["origin"] = _address(value, False, transaction_id)
        elif attr == OTHER_ADDRESS:
            out["other"] = _address(value, False, transaction_id)
        offset += 4 + size + (-size % 4)
    if "mapped" not in out:
        raise StunDecodeError("no (XOR-)MAPPED-ADDRESS")
    return out


def parse_stun_url(url: str) -> Endpoint:
    """stun:HOST[:PORT] (RFC 7064); the port defaults to 3478."""
    if not url.startswith("stun:"):
        raise ValueError(f"a STUN server URL starts with stun: ({url!r})")
    rest = url[len("stun:"):].split("?", 1)[0]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail.lstrip(":") or "3478"
    else:
        host, _, port = rest.partition(":")
        port = port or "3478"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a STUN server URL: {url!r}")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class NatTest:
    """One binding test and what came back."""

    name: str  # "mapping-1" (primary), "mapping-2" (other IP / second server), "mapping-3", "filtering-1..3"
    server: Endpoint  # where the request went
    change: int  # CHANGE-REQUEST flags asked for (0, 0x02 port, 0x06 IP and port)
    local: Endpoint  # the socket it went from
    answered: bool
    mapped: Endpoint | None = None  # XOR-MAPPED-ADDRESS: the NAT's public address for this socket
    origin: Endpoint | None = None  # where the answer came from
    other: Endpoint | None = None  # OTHER-ADDRESS: the server's second IP and port (RFC 5780)
    rtt_s: float | None = None


async def _transact(sock: trio.socket.SocketType, name: str, server: Endpoint, change: int,
                    timeout_s: float) -> NatTest:
    transaction_id = os.urandom(12)
    request = binding_request(transaction_id, change)
    local = sock.getsockname()[:2]
    start = trio.current_time()
    rto = FIRST_RTO_S
    with trio.move_on_after(timeout_s):
        while True:
            await sock.sendto(request, server)
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
