"""Circuit Relay v2 messages (libp2p/specs relay/circuit-v2.md), encoded and decoded by hand.

Status codes are kept as raw integers: a relay may send one the spec does not name, and that is
a finding, not a decoding error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from p2pdiag.wire import pb

HOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/hop"
STOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/stop"

MAX_MESSAGE_BYTES = 4096


class HopType(enum.IntEnum):
    RESERVE = 0
    CONNECT = 1
    STATUS = 2


class StopType(enum.IntEnum):
    CONNECT = 0
    STATUS = 1


class Status(enum.IntEnum):
    UNUSED = 0
    OK = 100
    RESERVATION_REFUSED = 200
    RESOURCE_LIMIT_EXCEEDED = 201
    PERMISSION_DENIED = 202
    CONNECTION_FAILED = 203
    NO_RESERVATION = 204
    MALFORMED_MESSAGE = 400
    UNEXPECTED_MESSAGE = 401


def status_name(code: int | None) -> str:
    if code is None:
        return "MISSING"
    try:
        return Status(code).name
    except ValueError:
        return f"UNKNOWN({code})"


@dataclass(frozen=True, slots=True)
class Limit:
    """Spec: duration in seconds, data in bytes; absent or 0 means unlimited."""

    duration: int | None = None
    data: int | None = None

    def encode(self) -> bytes:
        out = b""
        if self.duration is not None:
            out += pb.field_varint(1, self.duration)
        if self.data is not None:
            out += pb.field_varint(2, self.data)
        return out

    @classmethod
    def decode(cls, buf: bytes) -> Limit:
        f = pb.decode_fields(buf)
        return cls(duration=pb.last_int(f, 1), data=pb.last_int(f, 2))


@dataclass(frozen=True, slots=True)
class Peer:
    id: bytes
    addrs: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        return pb.field_bytes(1, self.id) + b"".join(pb.field_bytes(2, a) for a in self.addrs)

    @classmethod
    def decode(cls, buf: bytes) -> Peer:
        f = pb.decode_fields(buf)
        peer_id = pb.last_bytes(f, 1)
        if peer_id is None:
            raise pb.MalformedMessage("Peer without id")
        return cls(id=peer_id, addrs=tuple(pb.all_bytes(f, 2)))


@dataclass(frozen=True, slots=True)
class Reservation:
    expire: int | None
    addrs: tuple[bytes, ...] = ()
    voucher: bytes | None = None

    def encode(self) -> bytes:
        out = pb.field_varint(1, self.expire or 0)
        out += b"".join(pb.field_bytes(2, a) for a in self.addrs)
        if self.voucher is not None:
            out += pb.field_bytes(3, self.voucher)
        return out

    @classmethod
    def decode(cls, buf: bytes) -> Reservation:
        f = pb.decode_fields(buf)
        return cls(expire=pb.last_int(f, 1), addrs=tuple(pb.all_bytes(f, 2)), voucher=pb.last_bytes(f, 3))


@dataclass(frozen=True, slots=True)
class HopMessage:
    type: int
    peer: Peer | None = None
    reservation: Reservation | None = None
    limit: Limit | None = None
    status: int | None = None
    unknown_fields: tuple[int, ...] = field(default=())

    def encode(self) -> bytes:
        # `type` is required in the spec and always written, even when it is 0 (RESERVE).
        out = pb.field_varint(1, self.type)
        if self.peer is not None:
            out += pb.field_bytes(2, self.peer.encode())
        if self.reservation is not None:
            out += pb.field_bytes(3, self.reservation.encode())
        if self.limit is not None:
            out += pb.field_bytes(4, self.limit.encode())
        if self.status is not None:
            out += pb.field_varint(5, self.status)
        return out

    @classmethod
    def decode(cls, buf: bytes) -> HopMessage:
        f = pb.decode_fields(buf)
        msg_type = pb.last_int(f, 1)
        if msg_type is None:
            raise pb.MalformedMessage("HopMessage without type")
        peer = pb.last_bytes(f, 2)
        rsvp = pb.last_bytes(f, 3)
        limit = pb.last_bytes(f, 4)
        return cls(
            type=msg_type,
            peer=Peer.decode(peer) if peer is not None else None,
            reservation=Reservation.decode(rsvp) if rsvp is not None else None,
            limit=Limit.decode(limit) if limit is not None else None,
            status=pb.last_int(f, 5),
            unknown_fields=tuple(sorted(n for n in f if n not in (1, 2, 3, 4, 5))),
        )


@dataclass(frozen=True, slots=True)
class StopMessage:
    type: int
    peer: Peer | None = None
    limit: Limit | None = None
    status: int | None = None

    def encode(self) -> bytes:
        out = pb.field_varint(1, self.type)
        if self.peer is not None:
            out += pb.field_bytes(2, self.peer.encode())
        if self.limit is not None:
            out += pb.field_bytes(3, self.limit.encode())
        if self.status is not None:
            out += pb.field_varint(4, self.status)
        return out

    @classmethod
    def decode(cls, buf: bytes) -> StopMessage:
        f = pb.decode_fields(buf)
        msg_type = pb.last_int(f, 1)
        if msg_type is None:
            raise pb.MalformedMessage("StopMessage without type")
        peer = pb.last_bytes(f, 2)
        limit = pb.last_bytes(f, 3)
        return cls(
            type=msg_type,
            peer=Peer.decode(peer) if peer is not None else None,
            limit=Limit.decode(limit) if limit is not None else None,
            status=pb.last_int(f, 4),
        )
