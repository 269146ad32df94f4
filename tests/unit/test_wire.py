import pytest

from p2pdiag.wire import circuit, pb
from p2pdiag.wire.identify import Identify


def test_varint_round_trip_and_limits():
    for value in (0, 1, 127, 128, 300, 2**32, 2**63):
        encoded = pb.encode_varint(value)
        assert pb.decode_varint(encoded) == (value, len(encoded))
    with pytest.raises(pb.MalformedMessage, match="truncated"):
        pb.decode_varint(b"\x80")
    with pytest.raises(pb.MalformedMessage, match="longer than 10"):
        pb.decode_varint(b"\xff" * 11)


def test_hop_type_zero_is_on_the_wire():
    # proto3 code drops a field equal to its default; the spec requires `type`, so RESERVE (0) is written.
    assert circuit.HopMessage(type=circuit.HopType.RESERVE).encode() == b"\x08\x00"
    assert circuit.StopMessage(type=circuit.StopType.CONNECT).encode() == b"\x08\x00"


def test_hop_status_with_limit_round_trip():
    msg = circuit.HopMessage(type=circuit.HopType.STATUS, status=circuit.Status.OK,
                             limit=circuit.Limit(duration=120000, data=131072),
                             reservation=circuit.Reservation(expire=1_800_000_000, addrs=(b"\x04\x7f\x00\x00\x01",),
                                                             voucher=b"v"))
    back = circuit.HopMessage.decode(msg.encode())
    assert back == msg
    assert back.limit.duration == 120000 and back.limit.data == 131072


def test_unknown_status_code_is_kept_not_rejected():
    raw = circuit.HopMessage(type=circuit.HopType.STATUS, status=999).encode()
    back = circuit.HopMessage.decode(raw)
    assert back.status == 999
    assert circuit.status_name(back.status) == "UNKNOWN(999)"
    assert circuit.status_name(None) == "MISSING"
    assert circuit.status_name(204) == "NO_RESERVATION"


def test_malformed_messages_say_what_is_wrong():
    with pytest.raises(pb.MalformedMessage, match="without type"):
        circuit.HopMessage.decode(pb.field_varint(5, 100))
    with pytest.raises(pb.MalformedMessage, match="claims 10 bytes"):
        circuit.HopMessage.decode(b"\x08\x02\x22\x0a\x01")
    with pytest.raises(pb.MalformedMessage, match="wire type"):
        pb.decode_fields(b"\x0b")
    with pytest.raises(pb.MalformedMessage, match="should be a number"):
        circuit.HopMessage.decode(pb.field_bytes(1, b"x"))


def test_identify_decodes_fields_and_keeps_unknown_ones_harmlessly():
    raw = (pb.field_bytes(6, "js-libp2p/3.3.11") + pb.field_bytes(3, "/ipfs/ping/1.0.0")
           + pb.field_bytes(3, "/libp2p/circuit/relay/0.2.0/hop") + pb.field_bytes(4, b"\x04\x7f\x00\x00\x01")
           + pb.field_bytes(99, b"future"))
    msg = Identify.decode(raw)
    assert msg.agent_version == "js-libp2p/3.3.11"
    assert msg.protocols == ("/ipfs/ping/1.0.0", "/libp2p/circuit/relay/0.2.0/hop")
    assert msg.observed_addr == b"\x04\x7f\x00\x00\x01"
    assert msg.listen_addrs == ()
