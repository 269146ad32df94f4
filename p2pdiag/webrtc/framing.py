"""libp2p stream framing on a WebRTC data channel (libp2p/specs webrtc/README.md, "Multiplexing").

Sans-IO. Each data channel carries uvarint-length-prefixed protobuf frames
`Message{flag = 1: FIN=0 | STOP_SENDING=1 | RESET_STREAM=2 | FIN_ACK=3, message = 2}`; `flag` is
written whenever it is set, FIN (0) included. An encoded frame, prefix included, stays within
16 KiB. Frames may span data channel messages, so the decoder buffers bytes, not messages.

`StreamMachine` is the half-close state machine of one stream: the table in `_ON_FLAG` says what
each received flag does to the send and receive halves, after QUIC (RFC 9000 section 3) as the
spec adapts it: no RESET_STREAM in reply to STOP_SENDING, and a FIN is answered with FIN_ACK
even after we sent STOP_SENDING.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from p2pdiag.wire import pb

MAX_MESSAGE_BYTES = 16 * 1024  # one encoded frame, length prefix included
# Worst-case overhead of a data frame: 2 (prefix) + 2 (flag) + 1 (message tag) + 2 (message
# length) bytes, the same budget @libp2p/webrtc uses (PROTOBUF_OVERHEAD), so both sides cut
# data into frames of the same size.
FRAME_OVERHEAD_BYTES = 7
MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - FRAME_OVERHEAD_BYTES


class Flag(enum.IntEnum):
    FIN = 0
    STOP_SENDING = 1
    RESET_STREAM = 2
    FIN_ACK = 3


class FramingError(pb.MalformedMessage):
    """Bytes on a data channel that are not a valid frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    flag: Flag | int | None = None  # an int for a flag this version does not know
    message: bytes | None = None

    def encode(self) -> bytes:
        body = b""
        if self.flag is not None:
            body += pb.field_varint(1, int(self.flag))
        if self.message is not None:
            body += pb.field_bytes(2, self.message)
        return pb.length_prefixed(body)

    @classmethod
    def decode(cls, body: bytes) -> Frame:
        fields = pb.decode_fields(body)
        raw = pb.last_int(fields, 1)
        flag: Flag | int | None = raw
        if raw is not None and raw in Flag._value2member_map_:
            flag = Flag(raw)
        return cls(flag, pb.last_bytes(fields, 2))


def data_frames(data: bytes, max_payload: int = MAX_PAYLOAD_BYTES) -> list[bytes]:
    """Encoded frames carrying `data`, each within the 16 KiB limit."""
    view = memoryview(data)
    return [Frame(message=bytes(view[i : i + max_payload])).encode() for i in range(0, len(data), max_payload)]


class FrameDecoder:
    """Turns the bytes of successive data channel messages into frames."""

    def __init__(self, max_frame_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while self._buf:
            try:
                length, start = pb.decode_varint(bytes(self._buf[: pb.MAX_VARINT_BYTES]))
            except pb.MalformedMessage:
                if len(self._buf) >= pb.MAX_VARINT_BYTES:
                    raise FramingError("frame length prefix longer than 10 bytes") from None
                break  # the prefix continues in the next message
            if start + length > self._max:
                raise FramingError(f"frame of {start + length} bytes, more than the {self._max} allowed")
            if len(self._buf) < start + length:
                break
            body = bytes(self._buf[start : start + length])
            del self._buf[: start + length]
            try:
                frames.append(Frame.decode(body))
            except pb.MalformedMessage as exc:
                raise FramingError(f"not a frame: {exc}") from None
        return frames

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)


class SendState(enum.Enum):
    OPEN = "open"
    FIN_SENT = "fin_sent"  # closed for writing, waiting for FIN_ACK
    FIN_ACKED = "fin_acked"  # the remote has everything we sent
    STOPPED = "stopped"  # the remote sent STOP_SENDING: it reads no more
    RESET = "reset"


class RecvState(enum.Enum):
    OPEN = "open"
    STOP_SENT = "stop_sent"  # we sent STOP_SENDING; data is discarded, flags still count
    FIN_RECEIVED = "fin_received"  # end of stream
    RESET = "reset"


# What the remote did, as seen by the stream's user.
@dataclass(frozen=True, slots=True)
class DataReceived:
    data: bytes


@dataclass(frozen=True, slots=True)
class RemoteFinished:
    pass


@dataclass(frozen=True, slots=True)
class RemoteStoppedReading:
    pass


@dataclass(frozen=True, slots=True)
class RemoteReset:
    pass


@dataclass(frozen=True, slots=True)
class FinAcknowledged:
    pass


StreamEvent = DataReceived | RemoteFinished | RemoteStoppedReading | RemoteReset | FinAcknowledged


class StreamStateError(Exception):
    """A write or close the stream's state does not allow; `reason` is closed, stopped or reset."""

    def __init__(self, reason: str) -> None:
        super().__init__({"closed": "the stream is closed for writing",
                          "stopped": "the remote stopped reading (STOP_SENDING)",
                          "reset": "the stream was reset",
                          "gone": "the data channel is closed"}[reason])
        self.reason = reason


_RECV_ENDED = (RecvState.FIN_RECEIVED, RecvState.RESET)
_SEND_ENDED = (SendState.FIN_ACKED, SendState.STOPPED, SendState.RESET)

# flag -> ({send state before: send state after}, {recv state before: recv state after}, event, reply)
_ON_FLAG: dict[Flag, tuple[dict[SendState, SendState], dict[RecvState, RecvState], StreamEvent | None, Flag | None]] = {
    Flag.FIN: ({}, {RecvState.OPEN: RecvState.FIN_RECEIVED, RecvState.STOP_SENT: RecvState.FIN_RECEIVED},
               RemoteFinished(), Flag.FIN_ACK),
    Flag.STOP_SENDING: ({SendState.OPEN: SendState.STOPPED, SendState.FIN_SENT: SendState.STOPPED}, {},
                        RemoteStoppedReading(), None),
    Flag.RESET_STREAM: (dict.fromkeys(SendState, SendState.RESET), dict.fromkeys(RecvState, RecvState.RESET),
                        RemoteReset(), None),
    Flag.FIN_ACK: ({SendState.FIN_SENT: SendState.FIN_ACKED}, {}, FinAcknowledged(), None),
}


class StreamMachine:
    """The two halves of one libp2p stream over one data channel. Methods return frames to send."""

    def __init__(self) -> None:
        self.send = SendState.OPEN
        self.recv = RecvState.OPEN
        self.channel_gone = False

    def write(self, data: bytes) -> list[bytes]:
        if self.channel_gone and self.send is not SendState.RESET:
            raise StreamStateError("gone")
        if self.send is SendState.RESET:
            raise StreamStateError("reset")
        if self.send is SendState.STOPPED:
            raise StreamStateError("stopped")
        if self.send is not SendState.OPEN:
            raise StreamStateError("closed")
        return data_frames(data)

    def close_write(self) -> list[bytes]:
        if self.send is not SendState.OPEN or self.channel_gone:
            return []
        self.send = SendState.FIN_SENT
        return [Frame(Flag.FIN).encode()]

    def close_read(self) -> list[bytes]:
        if self.recv is not RecvState.OPEN or self.channel_gone:
            return []
        self.recv = RecvState.STOP_SENT
        return [Frame(Flag.STOP_SENDING).encode()]

    def reset(self) -> list[bytes]:
        already = self.send is SendState.RESET and self.recv is RecvState.RESET
        self.send, self.recv = SendState.RESET, RecvState.RESET
        return [] if already or self.channel_gone else [Frame(Flag.RESET_STREAM).encode()]

    def receive(self, frame: Frame) -> tuple[list[StreamEvent], list[bytes]]:
        events: list[StreamEvent] = []
        replies: list[bytes] = []
        if frame.message and self.recv is RecvState.OPEN:
            events.append(DataReceived(frame.message))
        if isinstance(frame.flag, Flag):
            sends, recvs, event, reply = _ON_FLAG[frame.flag]
            changed = self.send in sends or self.recv in recvs
            self.send = sends.get(self.send, self.send)
            self.recv = recvs.get(self.recv, self.recv)
            if changed and event is not None:
                events.append(event)
            if reply is not None and self.recv is not RecvState.RESET:
                replies.append(Frame(reply).encode())  # a repeated FIN is acknowledged again
        return events, replies

    def channel_closed(self) -> list[StreamEvent]:
        """The data channel closed under the stream: reading ends there, as @libp2p/webrtc treats it."""
        self.channel_gone = True
        if self.recv in (RecvState.OPEN, RecvState.STOP_SENT):
            self.recv = RecvState.FIN_RECEIVED
            return [RemoteFinished()]
        return []

    @property
    def finished(self) -> bool:
        """Both halves are over: the data channel can be closed without losing anything."""
        if self.send is SendState.RESET or self.recv is RecvState.RESET:
            return True
        return self.send in _SEND_ENDED and self.recv in _RECV_ENDED
