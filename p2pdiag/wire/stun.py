"""STUN binding requests and responses (RFC 5389) with the RFC 5780 attributes, by hand; and the
result of one NAT test. No I/O: p2pdiag/probes/nat.py sends them, diagnosis/network.py judges them.

aioice's codec is shaped for ICE, and p2pdiag pins as little of aioice as it can.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from p2pdiag.trace.events import NatTestCompleted

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
        raw = bytes(b ^ k for b, k in zip(raw, key, strict=False))
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


def event_fields(t: NatTest) -> dict[str, object]:
    """The fields of a `nat.test_completed` event for this test."""
    def split(ep: Endpoint | None) -> tuple[str | None, int | None]:
        return ep if ep is not None else (None, None)

    (mapped_address, mapped_port), (origin_address, origin_port), (other_address, other_port) = (
        split(t.mapped), split(t.origin), split(t.other))
    return {"test": t.name, "server_address": t.server[0], "server_port": t.server[1], "change_request": t.change,
            "local_port": t.local[1], "answered": t.answered, "mapped_address": mapped_address,
            "mapped_port": mapped_port, "origin_address": origin_address, "origin_port": origin_port,
            "other_address": other_address, "other_port": other_port,
            "rtt_s": round(t.rtt_s, 6) if t.rtt_s is not None else None}


def from_event(e: NatTestCompleted) -> NatTest:
    """A `nat.test_completed` event back as the test it recorded (the local address is not kept: 0.0.0.0)."""
    def join(address: str | None, port: int | None) -> Endpoint | None:
        return (address, port) if address is not None and port is not None else None

    return NatTest(e.test, (e.server_address, e.server_port), e.change_request, ("0.0.0.0", e.local_port),
                   e.answered, join(e.mapped_address, e.mapped_port), join(e.origin_address, e.origin_port),
                   join(e.other_address, e.other_port), e.rtt_s)
