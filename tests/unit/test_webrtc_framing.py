"""Sans-IO units: data channel frames and the per-stream half-close state machine."""

from __future__ import annotations

import pytest

from p2pdiag.webrtc.framing import (
    MAX_MESSAGE_BYTES,
    MAX_PAYLOAD_BYTES,
    DataReceived,
    FinAcknowledged,
    Flag,
    Frame,
    FrameDecoder,
    FramingError,
    RecvState,
    RemoteFinished,
    RemoteReset,
    RemoteStoppedReading,
    SendState,
    StreamMachine,
    StreamStateError,
    data_frames,
)


def decode_all(frames: list[bytes]) -> list[Frame]:
    return FrameDecoder().feed(b"".join(frames))


def test_fin_is_written_although_it_is_zero():
    assert Frame(Flag.FIN).encode() == b"\x02\x08\x00"
    assert decode_all([Frame(Flag.FIN).encode()]) == [Frame(Flag.FIN)]


def test_no_frame_exceeds_16_kib_with_its_prefix():
    data = bytes(range(256)) * 200
    frames = data_frames(data)
    assert all(len(f) <= MAX_MESSAGE_BYTES for f in frames)
    assert max(len(f) for f in frames) == MAX_MESSAGE_BYTES - 2  # the js budget keeps 2 bytes for a flag
    assert b"".join(f.message or b"" for f in decode_all(frames)) == data
    assert len(Frame(Flag.FIN, b"x" * MAX_PAYLOAD_BYTES).encode()) == MAX_MESSAGE_BYTES


def test_frames_may_span_messages_and_messages_may_hold_several_frames():
    stream = Frame(message=b"hello").encode() + Frame(Flag.FIN, b"!").encode()
    decoder = FrameDecoder()
    got = []
    for i in range(len(stream)):
        got += decoder.feed(stream[i : i + 1])
    assert got == [Frame(message=b"hello"), Frame(Flag.FIN, b"!")]
    assert decoder.buffered_bytes == 0


def test_oversized_and_garbage_frames_are_errors():
    with pytest.raises(FramingError, match="more than"):
        FrameDecoder().feed(b"\xff\xff\x01")  # announces 32767 bytes
    with pytest.raises(FramingError, match="not a frame"):
        FrameDecoder().feed(b"\x02\x0f\x00")  # wire type 7


def test_unknown_flags_are_kept_as_numbers_and_ignored():
    (frame,) = FrameDecoder().feed(Frame(7).encode())
    assert frame.flag == 7
    m = StreamMachine()
    assert m.receive(frame) == ([], [])


def test_spec_example_close_from_both_ends():
    """webrtc/README.md: A: DATA, FIN; B: FIN_ACK, DATA, FIN; A: FIN_ACK. Both may then close."""
    a, b = StreamMachine(), StreamMachine()

    def deliver(frames: list[bytes], to: StreamMachine) -> tuple[list, list[bytes]]:
        events, replies = [], []
        for frame in decode_all(frames):
            e, r = to.receive(frame)
            events += e
            replies += r
        return events, replies

    events, replies = deliver(a.write(b"ping") + a.close_write(), b)
    assert events == [DataReceived(b"ping"), RemoteFinished()]
    assert decode_all(replies) == [Frame(Flag.FIN_ACK)]
    assert deliver(replies, a) == ([FinAcknowledged()], [])
    assert a.send is SendState.FIN_ACKED and not a.finished
    events, replies = deliver(b.write(b"pong") + b.close_write(), a)
    assert events == [DataReceived(b"pong"), RemoteFinished()] and a.finished
    deliver(replies, b)
    assert b.finished and b.recv is RecvState.FIN_RECEIVED and b.send is SendState.FIN_ACKED


def test_writing_after_close_or_stop_sending_or_reset_fails_with_the_reason():
    m = StreamMachine()
    m.close_write()
    with pytest.raises(StreamStateError) as closed:
        m.write(b"x")
    assert closed.value.reason == "closed"
    m = StreamMachine()
    assert m.receive(Frame(Flag.STOP_SENDING))[0] == [RemoteStoppedReading()]
    with pytest.raises(StreamStateError, match="stopped reading"):
        m.write(b"x")
    m = StreamMachine()
    assert m.receive(Frame(Flag.RESET_STREAM))[0] == [RemoteReset()]
    assert m.finished
    with pytest.raises(StreamStateError, match="reset"):
        m.write(b"x")


def test_stop_sending_discards_data_but_still_acknowledges_fin():
    m = StreamMachine()
    assert decode_all(m.close_read()) == [Frame(Flag.STOP_SENDING)]
    events, replies = m.receive(Frame(Flag.FIN, b"late data"))
    assert events == [RemoteFinished()]  # the data is discarded
    assert decode_all(replies) == [Frame(Flag.FIN_ACK)]


def test_no_reset_in_reply_to_stop_sending():
    m = StreamMachine()
    assert m.receive(Frame(Flag.STOP_SENDING)) == ([RemoteStoppedReading()], [])


def test_fin_ack_without_fin_is_ignored_and_repeated_fin_is_acked_again():
    m = StreamMachine()
    assert m.receive(Frame(Flag.FIN_ACK)) == ([], [])
    m.receive(Frame(Flag.FIN))
    events, replies = m.receive(Frame(Flag.FIN))
    assert events == [] and decode_all(replies) == [Frame(Flag.FIN_ACK)]


def test_reset_is_sent_once():
    m = StreamMachine()
    assert decode_all(m.reset()) == [Frame(Flag.RESET_STREAM)]
    assert m.reset() == [] and m.close_write() == [] and m.finished


def test_data_channel_closing_ends_reading_like_js():
    m = StreamMachine()
    assert m.channel_closed() == [RemoteFinished()]
    assert m.recv is RecvState.FIN_RECEIVED
    with pytest.raises(StreamStateError, match="data channel is closed"):
        m.write(b"x")
    assert m.close_write() == [] and m.reset() == []
