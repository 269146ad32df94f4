"""The /webrtc-signaling/0.0.1 messages (libp2p/specs webrtc/webrtc.md), encoded by hand.

Sans-IO. `Message{type = 1: SDP_OFFER=0 | SDP_ANSWER=1 | ICE_CANDIDATE=2, data = 2}`, each
uvarint-length-prefixed on the stream. `type` is always written, even for SDP_OFFER (0): a proto3
encoder drops it, and js-libp2p then rejects the offer ("expected message type SDP_OFFER,
received: undefined").

ICE_CANDIDATE data is the JSON of `RTCIceCandidate.toJSON()`. End-of-candidates, as
@libp2p/webrtc 6.x reads it (private-to-private/util.js): data that parses to JSON `null` or
`""`, or no data at all. js never sends one itself (it drops the null candidate event); p2pdiag
sends `null`, which js accepts and skips.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from p2pdiag.wire import pb

PROTOCOL = "/webrtc-signaling/0.0.1"
MAX_MESSAGE_BYTES = 64 * 1024  # an SDP with many candidates stays far below this


class MessageType(enum.IntEnum):
    SDP_OFFER = 0
    SDP_ANSWER = 1
    ICE_CANDIDATE = 2


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    data: str | None

    def encode(self) -> bytes:
        out = pb.field_varint(1, int(self.type))
        if self.data is not None:
            out += pb.field_bytes(2, self.data)
        return out

    def framed(self) -> bytes:
        return pb.length_prefixed(self.encode())

    @classmethod
    def decode(cls, buf: bytes) -> Message:
        fields = pb.decode_fields(buf)
        raw_type = pb.last_int(fields, 1)
        if raw_type is None:
            raise pb.MalformedMessage("no 'type' field (a proto3 encoder drops SDP_OFFER=0; js-libp2p "
                                      "rejects such a message)")
        try:
            kind = MessageType(raw_type)
        except ValueError:
            raise pb.MalformedMessage(f"type {raw_type} is not SDP_OFFER, SDP_ANSWER or ICE_CANDIDATE") from None
        data = pb.last_bytes(fields, 2)
        try:
            text = data.decode("utf-8") if data is not None else None
        except UnicodeDecodeError:
            raise pb.MalformedMessage(f"{kind.name} data is not UTF-8") from None
        return cls(kind, text)


@dataclass(frozen=True, slots=True)
class CandidateInit:
    """RTCIceCandidateInit, the shape of `RTCIceCandidate.toJSON()`."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None
    username_fragment: str | None

    def to_json(self) -> str:
        return json.dumps({"candidate": self.candidate, "sdpMid": self.sdp_mid,
                           "sdpMLineIndex": self.sdp_mline_index, "usernameFragment": self.username_fragment},
                          separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class EndOfCandidates:
    data: str | None  # as received


def offer(sdp: str) -> Message:
    return Message(MessageType.SDP_OFFER, sdp)


def answer(sdp: str) -> Message:
    return Message(MessageType.SDP_ANSWER, sdp)


def candidate(init: CandidateInit) -> Message:
    return Message(MessageType.ICE_CANDIDATE, init.to_json())


def end_of_candidates() -> Message:
    return Message(MessageType.ICE_CANDIDATE, "null")


def parse_candidate(data: str | None) -> CandidateInit | EndOfCandidates:
    """An ICE_CANDIDATE message's data; raises pb.MalformedMessage for what js could not use either."""
    if data is None:
        return EndOfCandidates(None)
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise pb.MalformedMessage(f"ICE_CANDIDATE data is not JSON ({exc.msg}): {data[:80]!r}") from None
    except RecursionError:  # a peer's `[[[[…` thousands deep (found by tests/fuzz)
        raise pb.MalformedMessage(f"ICE_CANDIDATE data nests JSON too deep: {data[:80]!r}") from None
    if value is None or value == "":
        return EndOfCandidates(data)
    if not isinstance(value, dict):
        raise pb.MalformedMessage(f"ICE_CANDIDATE data is JSON but not an object: {data[:80]!r}")
    text = value.get("candidate")
    if text is None or text == "":
        # RTCIceCandidate with an empty candidate: end of this generation of candidates
        return EndOfCandidates(data)
    if not isinstance(text, str):
        raise pb.MalformedMessage(f"ICE_CANDIDATE 'candidate' is not a string: {data[:80]!r}")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    ufrag = value.get("usernameFragment")
    if mid is None and index is None:
        raise pb.MalformedMessage("ICE_CANDIDATE has neither sdpMid nor sdpMLineIndex")
    if mid is not None and not isinstance(mid, str):
        raise pb.MalformedMessage(f"ICE_CANDIDATE sdpMid is not a string: {mid!r}")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise pb.MalformedMessage(f"ICE_CANDIDATE sdpMLineIndex is not an integer: {index!r}")
    return CandidateInit(text, mid, index, ufrag if isinstance(ufrag, str) else None)
