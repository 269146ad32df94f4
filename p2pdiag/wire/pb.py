"""A minimal protobuf wire codec.

p2pdiag writes and parses the relay, identify and signaling messages itself instead of using
generated classes: proto3 generated code drops fields equal to their default (an SDP_OFFER type
of 0 vanishes from the wire), and a diagnostic tool must be able to say *which* byte of a
hostile message was wrong rather than raise a library error.
"""

from __future__ import annotations

from collections.abc import Iterable

VARINT = 0
I64 = 1
LEN = 2
I32 = 5

MAX_VARINT_BYTES = 10


class MalformedMessage(ValueError):
    """Bytes that are not a valid protobuf message of the expected shape."""


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints here are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf: bytes, pos: int = 0) -> tuple[int, int]:
    """Return (value, next position); raise MalformedMessage on truncation or overflow."""
    result = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise MalformedMessage("truncated varint")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos + i + 1
        shift += 7
    raise MalformedMessage("varint longer than 10 bytes")


def field_varint(number: int, value: int) -> bytes:
    return encode_varint(number << 3 | VARINT) + encode_varint(value)


def field_bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | LEN) + encode_varint(len(data)) + data


def decode_fields(buf: bytes) -> dict[int, list[int | bytes]]:
    """Decode one message into {field number: [values in wire order]}.

    Varint fields give ints, length-delimited fields give bytes; fixed-width fields give
    their little-endian integer value. Unknown fields are kept, as protobuf requires.
    """
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise MalformedMessage("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = decode_varint(buf, pos)
        elif wire_type == LEN:
            length, pos = decode_varint(buf, pos)
            if pos + length > len(buf):
                raise MalformedMessage(f"field {number} claims {length} bytes, {len(buf) - pos} left")
            value, pos = bytes(buf[pos : pos + length]), pos + length
        elif wire_type in (I64, I32):
            width = 8 if wire_type == I64 else 4
            if pos + width > len(buf):
                raise MalformedMessage(f"truncated fixed-width field {number}")
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:
            raise MalformedMessage(f"unsupported wire type {wire_type} in field {number}")
        fields.setdefault(number, []).append(value)
    return fields


def last_int(fields: dict[int, list[int | bytes]], number: int) -> int | None:
    values = fields.get(number)
    if not values:
        return None
    value = values[-1]
    if not isinstance(value, int):
        raise MalformedMessage(f"field {number} should be a number")
    return value


def last_bytes(fields: dict[int, list[int | bytes]], number: int) -> bytes | None:
    values = fields.get(number)
    if not values:
        return None
    value = values[-1]
    if not isinstance(value, bytes):
        raise MalformedMessage(f"field {number} should be bytes")
    return value


def all_bytes(fields: dict[int, list[int | bytes]], number: int) -> list[bytes]:
    values = fields.get(number, [])
    if not all(isinstance(v, bytes) for v in values):
        raise MalformedMessage(f"field {number} should be bytes")
    return [v for v in values if isinstance(v, bytes)]


def length_prefixed(payload: bytes) -> bytes:
    return encode_varint(len(payload)) + payload


def join(parts: Iterable[bytes]) -> bytes:
    return b"".join(parts)
