"""Chromium's mDNS candidates: aioice resolves their names (p2pdiag.webrtc.ice.resolve_mdns_leniently),
and a candidate still resolving when the attempt ends is in the trace all the same.

The two answers below are what Chromium 156's mDNS responder sent here (captured on 224.0.0.251:5353)
to aioice's A queries for the names of its two host candidates: one on 192.0.2.2, one on fd00::2.
No network: the answers are fed to aioice's protocol object directly.
"""

from __future__ import annotations

import asyncio

import aioice.mdns
import dns.exception
import dns.message
import dns.name
import pytest

from p2pdiag.trace.events import CandidateSource, RemoteCandidateReceived
from p2pdiag.webrtc import ice
from p2pdiag.webrtc.config import IceConfig
from p2pdiag.webrtc.peer import STILL_RESOLVING, Session
from p2pdiag.webrtc.signaling import CandidateInit

V4_NAME = "338938f3-7db4-4e94-97e5-6c35e2e0ca69.local"
V6_NAME = "7c68df10-ffbc-4378-b244-1aa2b9f1dfe2.local"
# answer: <V4_NAME> A 192.0.2.2; additional: <V4_NAME> NSEC, its next-domain name a compression pointer
CHROMIUM_V4 = bytes.fromhex(
    "000084000000000100000001"
    "2433333839333866332d376462342d346539342d393765352d366333356532653063613639056c6f63616c00"
    "0001800100000078" "0004c0000202"
    "2433333839333866332d376462342d346539342d393765352d366333356532653063613639056c6f63616c00"
    "002f800100000078" "0005c046000140")
# answer: <V6_NAME> NSEC (no A record; next-domain name compressed); additional: <V6_NAME> AAAA fd00::2
CHROMIUM_V6 = bytes.fromhex(
    "000084000000000100000001"
    "2437633638646631302d666662632d343337382d623234342d316161326239663164666532056c6f63616c00"
    "002f800100000078" "0008c00c000400000008"
    "2437633638646631302d666662632d343337382d623234342d316161326239663164666532056c6f63616c00"
    "001c800100000078" "0010fd000000000000000000000000000002")
AIOICE_QUERY = bytes.fromhex(
    "000000000001000000000000"
    "2433333839333866332d376462342d346539342d393765352d366333356532653063613639056c6f63616c00"
    "00010001")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def test_dnspython_refuses_chromiums_answers():
    """What the workaround is for: aioice parses with dnspython, which rejects a compressed name in NSEC
    rdata (RFC 6762 section 18.14 allows it), so aioice drops the whole answer. If this fails, aioice
    may resolve Chromium's names on its own and resolve_mdns_leniently can go."""
    for packet in (CHROMIUM_V4, CHROMIUM_V6):
        with pytest.raises(dns.exception.FormError):
            dns.message.from_wire(packet)


def test_addresses_in_chromiums_answers():
    assert ice.mdns_response_addresses(CHROMIUM_V4) == [(name(V4_NAME), "192.0.2.2")]
    assert ice.mdns_response_addresses(CHROMIUM_V6) == [(name(V6_NAME), "fd00::2")]


@pytest.mark.parametrize("packet", [
    AIOICE_QUERY,  # a query, not an answer
    b"",
    CHROMIUM_V4[:11],  # header cut short
    CHROMIUM_V4[:-3],  # last record cut short
    CHROMIUM_V4[:12 + 10],  # name cut short
    bytes.fromhex("000084000000000100000000" "c00c" "0001800100000078" "0004c0000202"),  # pointer to itself
    bytes.fromhex("000084000000000100000000" "c020" "0001800100000078" "0004c0000202"),  # pointer forwards
    bytes.fromhex("000084000000000100000000" "4001" "0001800100000078" "0004c0000202"),  # label type 01
], ids=["query", "empty", "short-header", "short-record", "short-name", "pointer-loop", "pointer-forward",
        "label-type"])
def test_nothing_from_a_query_or_a_malformed_message(packet):
    assert ice.mdns_response_addresses(packet) == []


def test_a_wrong_length_address_record_is_skipped():
    packet = bytes.fromhex("000084000000000100000000" "016100" "0001800100000078" "0003c00002")
    assert ice.mdns_response_addresses(packet) == []


def _resolve(packets: list[bytes], names: list[str]) -> list[object]:
    """Feed `packets` to an aioice mDNS protocol with queries pending for `names`; what each got."""

    async def main() -> list[object]:
        protocol = aioice.mdns.MDnsProtocol()
        loop = asyncio.get_running_loop()
        futures = {}
        for n in names:
            futures[n] = loop.create_future()
            protocol.queries[name(n)] = {futures[n]}
        for packet in packets:
            protocol.datagram_received(packet, ("192.0.2.2", 5353))
        return [f.result() if f.done() else None for f in futures.values()]

    return asyncio.run(main())


@pytest.fixture
def aioice_own(monkeypatch):
    """aioice's own handler on MDnsProtocol for this test (a Session elsewhere may have wrapped it already)."""
    handler = aioice.mdns.MDnsProtocol.datagram_received
    monkeypatch.setattr(aioice.mdns.MDnsProtocol, "datagram_received", getattr(handler, "__wrapped__", handler))


def test_aioice_alone_leaves_chromiums_names_unresolved(aioice_own):
    assert _resolve([CHROMIUM_V4, CHROMIUM_V6], [V4_NAME, V6_NAME]) == [None, None]


def test_with_the_lenient_handler_both_names_resolve(aioice_own):
    ice.resolve_mdns_leniently()
    handler = aioice.mdns.MDnsProtocol.datagram_received
    ice.resolve_mdns_leniently()  # idempotent: not wrapped twice
    assert aioice.mdns.MDnsProtocol.datagram_received is handler
    assert _resolve([AIOICE_QUERY, CHROMIUM_V4, CHROMIUM_V6], [V4_NAME, V6_NAME]) == ["192.0.2.2", "fd00::2"]
    # an answer for a name nobody asked about changes nothing
    assert _resolve([CHROMIUM_V6], [V4_NAME]) == [None]


def test_a_well_formed_answer_is_still_read_by_aioice(aioice_own):
    plain = CHROMIUM_V4[:10] + b"\x00\x00" + CHROMIUM_V4[12:12 + 44 + 10 + 4]  # the A answer only
    dns.message.from_wire(plain)  # dnspython reads this one
    assert _resolve([plain], [V4_NAME]) == ["192.0.2.2"]  # aioice alone
    ice.resolve_mdns_leniently()
    assert ice.mdns_response_addresses(plain) == [(name(V4_NAME), "192.0.2.2")]
    assert _resolve([plain], [V4_NAME]) == ["192.0.2.2"]


def test_a_candidate_still_resolving_when_the_attempt_ends_is_recorded():
    """The attempt succeeded (through a peer-reflexive candidate) while aioice waited for an mDNS answer:
    the trickled candidate is in the trace, not used, and says why."""
    recorded: list[tuple[type, dict]] = []

    async def main() -> None:
        session = Session("webrtc-1", IceConfig(), lambda cls, **fields: recorded.append((cls, fields)),
                          lambda *args: None)
        resolving = asyncio.Event()

        async def add_ice_candidate(candidate: object) -> None:  # as aioice does while waiting for the answer
            resolving.set()
            await asyncio.sleep(3600)

        session.pc.addIceCandidate = add_ice_candidate
        init = CandidateInit(candidate=f"candidate:2231062671 1 udp 2113937151 {V4_NAME} 53245 typ host "
                             "generation 0 ufrag 1wWN network-cost 999", sdp_mid="0", sdp_mline_index=0,
                             username_fragment="1wWN")
        task = asyncio.create_task(session.add_candidate(init))
        await resolving.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await session.close()

    asyncio.run(main())
    received = [fields for cls, fields in recorded if cls is RemoteCandidateReceived]
    assert len(received) == 1, recorded
    got = received[0]
    assert got["address"] == V4_NAME and got["port"] == 53245 and got["mdns"] is True
    assert got["source"] is CandidateSource.TRICKLE
    assert got["accepted"] is False and got["mdns_resolved"] is False and got["note"] == STILL_RESOLVING
