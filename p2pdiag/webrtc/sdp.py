"""What an SDP offer or answer announces, and ICE candidate lines, read without any WebRTC stack.

Sans-IO: pure parsing, so the trace can say what each side offered (DTLS fingerprints, who
starts DTLS, ICE credentials, candidates, end-of-candidates) whatever the stack did with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MDNS_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local$", re.IGNORECASE)
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")


class CandidateSyntaxError(ValueError):
    """A candidate attribute that does not follow RFC 8839 section 5.1."""


@dataclass(frozen=True, slots=True)
class CandidateLine:
    """One ICE candidate (RFC 8839 section 5.1: `candidate:<foundation> <component> ...`)."""

    foundation: str
    component: int
    protocol: str  # "udp" or "tcp", lower case
    priority: int
    address: str
    port: int
    candidate_type: str  # host, srflx, prflx or relay
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None

    @property
    def mdns(self) -> bool:
        return MDNS_NAME.match(self.address) is not None

    @classmethod
    def parse(cls, text: str) -> CandidateLine:
        """Parse `candidate:...`, with or without `a=` in front (browsers and libdatachannel differ)."""
        body = text.strip()
        body = body.removeprefix("a=")
        if not body.startswith("candidate:"):
            raise CandidateSyntaxError(f"does not start with 'candidate:': {text[:60]!r}")
        fields = body[len("candidate:"):].split()
        if len(fields) < 8 or fields[6] != "typ":
            raise CandidateSyntaxError(f"expected '<foundation> <component> <transport> <priority> <address> "
                                       f"<port> typ <type>', got {text[:120]!r}")
        try:
            component, priority, port = int(fields[1]), int(fields[3]), int(fields[5])
        except ValueError:
            raise CandidateSyntaxError(f"component, priority or port is not a number in {text[:120]!r}") from None
        if fields[7] not in CANDIDATE_TYPES:
            raise CandidateSyntaxError(f"unknown candidate type {fields[7]!r}")
        extra = dict(zip(fields[8::2], fields[9::2], strict=False))
        related_port = extra.get("rport")
        return cls(
            foundation=fields[0],
            component=component,
            protocol=fields[2].lower(),
            priority=priority,
            address=fields[4],
            port=port,
            candidate_type=fields[7],
            related_address=extra.get("raddr"),
            related_port=int(related_port) if related_port and related_port.isdigit() else None,
            tcp_type=extra.get("tcptype"),
        )


@dataclass(frozen=True, slots=True)
class SdpFacts:
    fingerprints: tuple[str, ...]  # "sha-256 AB:CD:..."
    setup: str | None  # active, passive, actpass, holdconn
    ice_ufrag: str | None
    ice_lite: bool
    candidates: tuple[str, ...]  # the candidate attribute values ("candidate:...")
    end_of_candidates: bool
    data_channel: bool  # an m=application section (SCTP data channels)
    media_sections: int


def parse_sdp(text: str) -> SdpFacts:
    fingerprints: list[str] = []
    setup = ufrag = None
    ice_lite = end = data_channel = False
    candidates: list[str] = []
    media = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media += 1
            data_channel = data_channel or line.startswith("m=application")
        elif line.startswith("a=fingerprint:"):
            fingerprints.append(line[len("a=fingerprint:"):].strip())
        elif line.startswith("a=setup:") and setup is None:
            setup = line[len("a=setup:"):].strip().lower()
        elif line.startswith("a=ice-ufrag:") and ufrag is None:
            ufrag = line[len("a=ice-ufrag:"):].strip()
        elif line == "a=ice-lite":
            ice_lite = True
        elif line.startswith("a=candidate:"):
            candidates.append(line[2:])
        elif line == "a=end-of-candidates":
            end = True
    return SdpFacts(tuple(fingerprints), setup, ufrag, ice_lite, tuple(candidates), end, data_channel, media)
