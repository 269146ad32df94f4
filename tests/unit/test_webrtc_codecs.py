"""Sans-IO units: the signaling messages, SDP facts and candidate lines."""

from __future__ import annotations

import json

import pytest

from p2pdiag.webrtc import signaling
from p2pdiag.webrtc.sdp import CandidateLine, CandidateSyntaxError, parse_sdp
from p2pdiag.webrtc.signaling import CandidateInit, EndOfCandidates, Message, MessageType
from p2pdiag.wire import pb

# What @libp2p/webrtc 6.0.33 in Node (node-datachannel) sends, captured on this machine.
JS_CANDIDATE = ('{"candidate":"a=candidate:1 1 UDP 2114977791 127.0.0.1 39207 typ host",'
                '"sdpMLineIndex":null,"sdpMid":"0","usernameFragment":null}')
JS_OFFER = ("v=0\r\no=rtc 235787573 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "a=msid-semantic:WMS *\r\na=ice-options:ice2,trickle\r\na=fingerprint:sha-256 7F:E6:DD:FA:F1:54:77:69:"
            "94:E6:01:31:E9:2E:EB:1A:7F:1E:60:EB:71:2B:63:E1:FE:B0:77:1C:4C:A2:AC:C2\r\n"
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
            "a=sctp-port:5000\r\na=max-message-size:262144\r\na=setup:actpass\r\na=ice-ufrag:jbwE\r\n"
            "a=ice-pwd:9bUvzOvL9u3PAhTh932cyQ\r\n")


def test_offer_always_carries_its_type_even_though_it_is_zero():
    raw = signaling.offer("v=0").encode()
    assert raw[:2] == b"\x08\x00"  # field 1, varint, SDP_OFFER = 0: a proto3 encoder would drop it
    assert Message.decode(raw) == Message(MessageType.SDP_OFFER, "v=0")


def test_framed_message_is_uvarint_length_prefixed():
    framed = signaling.answer("x" * 200).framed()
    length, start = pb.decode_varint(framed)
    assert length == len(framed) - start and start == 2


def test_a_message_without_type_is_rejected_with_the_reason():
    with pytest.raises(pb.MalformedMessage, match="proto3"):
        Message.decode(pb.field_bytes(2, "v=0"))


def test_an_unknown_type_is_malformed():
    with pytest.raises(pb.MalformedMessage, match="type 3"):
        Message.decode(pb.field_varint(1, 3))  # py-libp2p's ICE_DONE is not in the spec


def test_js_candidate_json_parses():
    parsed = signaling.parse_candidate(JS_CANDIDATE)
    assert parsed == CandidateInit("a=candidate:1 1 UDP 2114977791 127.0.0.1 39207 typ host", "0", None, None)
    line = CandidateLine.parse(parsed.candidate)
    assert (line.foundation, line.component, line.protocol, line.address, line.port, line.candidate_type) == (
        "1", 1, "udp", "127.0.0.1", 39207, "host")


@pytest.mark.parametrize("data", [None, "null", '""', '{"candidate":"","sdpMid":"0"}'])
def test_end_of_candidates_as_js_reads_it(data):
    assert isinstance(signaling.parse_candidate(data), EndOfCandidates)


def test_p2pdiag_sends_end_of_candidates_as_json_null():
    message = signaling.end_of_candidates()
    assert message.type is MessageType.ICE_CANDIDATE and json.loads(message.data) is None


@pytest.mark.parametrize("data,why", [
    ("{not json", "not JSON"),
    ("[1]", "not an object"),
    ('{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host"}', "neither sdpMid nor sdpMLineIndex"),
    ('{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMLineIndex":"0"}', "not an integer"),
])
def test_bad_candidate_messages_say_why(data, why):
    with pytest.raises(pb.MalformedMessage, match=why):
        signaling.parse_candidate(data)


def test_candidate_init_round_trips_through_json():
    init = CandidateInit("candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host", "0", 0, "abcd")
    assert signaling.parse_candidate(signaling.candidate(init).data) == init


def test_candidate_lines_with_related_address_and_mdns():
    srflx = CandidateLine.parse("candidate:2 1 udp 1694498815 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 5000")
    assert (srflx.candidate_type, srflx.related_address, srflx.related_port) == ("srflx", "10.0.0.2", 5000)
    mdns = CandidateLine.parse("candidate:3 1 udp 2122260223 0c8a5e4e-8b1d-4c3e-9a4b-1f2e3d4c5b6a.local 54321 typ host")
    assert mdns.mdns and not srflx.mdns


@pytest.mark.parametrize("text", ["1 1 udp 1 1.2.3.4 5 typ host", "candidate:1 1 udp x 1.2.3.4 5 typ host",
                                  "candidate:1 1 udp 1 1.2.3.4 5 type host", "candidate:1 1 udp 1 1.2.3.4 5 typ weird"])
def test_candidate_syntax_errors(text):
    with pytest.raises(CandidateSyntaxError):
        CandidateLine.parse(text)


def test_sdp_facts_of_a_js_offer():
    facts = parse_sdp(JS_OFFER)
    fingerprint = ("sha-256 7F:E6:DD:FA:F1:54:77:69:94:E6:01:31:E9:2E:EB:1A:7F:1E:60:EB:71:2B:63:"
                   "E1:FE:B0:77:1C:4C:A2:AC:C2")
    assert facts.fingerprints == (fingerprint,)
    assert (facts.setup, facts.ice_ufrag, facts.data_channel, facts.media_sections) == ("actpass", "jbwE", True, 1)
    assert facts.candidates == () and not facts.end_of_candidates  # js trickles every candidate


def test_sdp_facts_with_inline_candidates_and_end():
    sdp = JS_OFFER + "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"
    facts = parse_sdp(sdp)
    assert facts.candidates == ("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",) and facts.end_of_candidates


def test_deeply_nested_candidate_json_is_malformed_not_a_crash():
    """Found by tests/fuzz: json.loads raises RecursionError on `[[[[…`, which escaped parse_candidate."""
    import pytest

    from p2pdiag.webrtc import signaling
    from p2pdiag.wire import pb

    with pytest.raises(pb.MalformedMessage, match="too deep"):
        signaling.parse_candidate("[" * 100_000)
