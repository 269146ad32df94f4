"""The identify message (/ipfs/id/1.0.0), decoded by hand."""

from __future__ import annotations

from dataclasses import dataclass

from p2pdiag.wire import pb

IDENTIFY_PROTOCOL = "/ipfs/id/1.0.0"
PING_PROTOCOL = "/ipfs/ping/1.0.0"
PING_PAYLOAD_BYTES = 32
MAX_IDENTIFY_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Identify:
    public_key: bytes | None
    listen_addrs: tuple[bytes, ...]
    protocols: tuple[str, ...]
    observed_addr: bytes | None
    protocol_version: str | None
    agent_version: str | None

    @classmethod
    def decode(cls, buf: bytes) -> Identify:
        f = pb.decode_fields(buf)

        def text(value: bytes | None) -> str | None:
            return value.decode("utf-8", "replace") if value is not None else None

        return cls(
            public_key=pb.last_bytes(f, 1),
            listen_addrs=tuple(pb.all_bytes(f, 2)),
            protocols=tuple(p.decode("utf-8", "replace") for p in pb.all_bytes(f, 3)),
            observed_addr=pb.last_bytes(f, 4),
            protocol_version=text(pb.last_bytes(f, 5)),
            agent_version=text(pb.last_bytes(f, 6)),
        )
