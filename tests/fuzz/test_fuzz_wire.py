"""Fuzzing the hand-written codecs a peer's bytes go through.

Each decoder may raise only its own documented error (pb.MalformedMessage and its FramingError;
StunDecodeError for STUN), and must not take time or memory out of proportion to its input. Inputs
are raw bytes and bytes built from valid messages with a few changed, so the fuzzer gets past the
first field.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support.work import assert_linear, cost

from p2pdiag.webrtc import framing, signaling
from p2pdiag.wire import circuit, envelope, identify, pb, stun

# Lines executed per call: a constant plus so many per input byte (tests/support/work.py counts
# them). A quadratic decoder of a 4 KiB input runs millions of lines.
BASE_LINES = 2_000
LINES_PER_BYTE = 16

VALID = [
    circuit.HopMessage(type=circuit.HopType.STATUS, status=100, limit=circuit.Limit(120, 131072),
                       reservation=circuit.Reservation(expire=1 << 40, addrs=(b"\x04\x7f\x00\x00\x01",),
                                                       voucher=b"v" * 40),
                       peer=circuit.Peer(id=b"\x00\x24" + b"k" * 36, addrs=(b"a",))).encode(),
    circuit.StopMessage(type=circuit.StopType.CONNECT, peer=circuit.Peer(id=b"p" * 38),
                        limit=circuit.Limit(duration=5)).encode(),
    signaling.offer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n").encode(),
    signaling.candidate(signaling.CandidateInit("candidate:1 1 udp 1 1.2.3.4 5 typ host", "0", 0, "u")).encode(),
    framing.Frame(framing.Flag.FIN, b"data").encode(),
    envelope.seal(key_type=1, key_data=b"k" * 32, payload=envelope.voucher_payload(b"r" * 38, b"p" * 38, 99),
                  sign=lambda m: b"s" * 64),
    pb.field_bytes(1, b"key") + pb.field_bytes(2, b"\x04\x7f\x00\x00\x01") + pb.field_bytes(3, "/ipfs/id/1.0.0")
    + pb.field_bytes(6, "agent"),
]


@st.composite
def mutated(draw) -> bytes:
    base = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "varint"]))
        at = draw(st.integers(0, len(base)))
        if op == "flip" and at < len(base):
            base[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            base[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and at < len(base):
            del base[at:at + draw(st.integers(1, 8))]
        elif op == "varint":
            base[at:at] = pb.encode_varint(draw(st.sampled_from([0, 1 << 31, 1 << 63, (1 << 64) - 1, 64 << 20])))
    return bytes(base)


payloads = st.one_of(st.binary(max_size=4096), mutated())


def bounded(decode, data, errors: tuple[type[BaseException], ...]) -> None:
    c = cost(lambda: decode(data), errors)
    assert_linear(c, len(data or ""), base_lines=BASE_LINES, lines_per_unit=LINES_PER_BYTE)


MALFORMED = (pb.MalformedMessage,)


@given(payloads)
def test_circuit_messages(data):
    for decode in (circuit.HopMessage.decode, circuit.StopMessage.decode, circuit.Limit.decode,
                   circuit.Peer.decode, circuit.Reservation.decode):
        bounded(decode, data, MALFORMED)


@given(payloads)
def test_pb_fields(data):
    bounded(pb.decode_fields, data, MALFORMED)
    bounded(lambda d: pb.decode_varint(d, 0), data, MALFORMED)


@given(payloads)
def test_identify(data):
    bounded(identify.Identify.decode, data, MALFORMED)


def check_voucher(data: bytes) -> envelope.VoucherReport:
    return envelope.check_voucher(data, relay_peer_id=b"r" * 38, peer_id=b"p" * 38, expire=99, now_unix_s=50.0)


check_voucher(VALID[5])  # imports `cryptography` now, not inside the first timed example


@given(payloads)
def test_envelope_and_voucher(data):
    """check_voucher reports every problem as a failed check: nothing at all may escape it."""
    bounded(envelope.Envelope.decode, data, MALFORMED)
    bounded(envelope.Voucher.decode, data, MALFORMED)
    bounded(check_voucher, data, ())


@given(payloads)
def test_signaling(data):
    def decode(d: bytes) -> None:
        msg = signaling.Message.decode(d)
        if msg.type is signaling.MessageType.ICE_CANDIDATE:
            signaling.parse_candidate(msg.data)

    bounded(decode, data, MALFORMED)


@given(st.one_of(st.none(), st.text(max_size=300), st.sampled_from(
    ['{"candidate":1}', '{"candidate":"c","sdpMLineIndex":true}', '[]', '""', 'null', '{"candidate":"c"}',
     '{"candidate":"c","sdpMid":1}', "[" * 5000, '{"candidate":"c","sdpMid":"0","usernameFragment":7}'])))
def test_signaling_candidates(text):
    bounded(signaling.parse_candidate, text, MALFORMED)


@given(st.lists(payloads, max_size=6))
def test_frame_decoder(chunks):
    """A data channel's messages, fed one by one; buffered bytes never exceed one frame."""
    decoder = framing.FrameDecoder()

    def feed_all(_: bytes) -> None:
        for chunk in chunks:
            decoder.feed(chunk)
            assert decoder.buffered_bytes <= framing.MAX_MESSAGE_BYTES

    bounded(feed_all, b"".join(chunks), (framing.FramingError,))


@given(payloads)
def test_frame(data):
    bounded(framing.Frame.decode, data, MALFORMED)


@given(st.binary(min_size=0, max_size=600), st.binary(min_size=12, max_size=12))
def test_stun(data, transaction_id):
    header = b"\x01\x01" + len(data).to_bytes(2, "big") + b"\x21\x12\xa4\x42" + transaction_id
    for msg in (data, header + data):
        bounded(lambda d: stun.parse_response(d, transaction_id), msg, (stun.StunDecodeError,))


@given(st.lists(st.tuples(st.integers(1, 30), st.one_of(st.integers(0, (1 << 64) - 1), st.binary(max_size=64))),
                max_size=10))
def test_pb_round_trip(fields):
    """What the encoder writes, the decoder reads back field by field, in order."""
    data = b"".join(pb.field_varint(n, v) if isinstance(v, int) else pb.field_bytes(n, v) for n, v in fields)
    decoded = pb.decode_fields(data)
    expected: dict[int, list] = {}
    for n, v in fields:
        expected.setdefault(n, []).append(v)
    assert decoded == expected
