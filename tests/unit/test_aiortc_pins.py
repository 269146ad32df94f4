"""Pin what p2pdiag.webrtc.rtc takes from aiortc's private side, and ice.resolved_address from aioice's.

Each test names the private attribute; when aiortc drops one, the test says which and where
p2pdiag uses it, before a trace silently loses a DTLS role or a certificate check. Plain asyncio,
loopback only.
"""

from __future__ import annotations

import asyncio

import aiortc
import pytest
from aioice import Candidate
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer

from p2pdiag.webrtc import ice, rtc

WHERE = "mend p2pdiag/webrtc/rtc.py (the one place p2pdiag reaches into aiortc)"


def test_installed_aiortc_is_the_pinned_one():
    assert aiortc.__version__.startswith("1.16"), aiortc.__version__


async def _offered() -> RTCPeerConnection:
    pc = RTCPeerConnection()
    pc.createDataChannel("init")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


@pytest.fixture
def pc():
    loop = asyncio.new_event_loop()
    pc = loop.run_until_complete(_offered())  # built in the loop: aiortc takes the running loop
    yield pc
    loop.run_until_complete(pc.close())
    loop.close()


@pytest.mark.parametrize("name", ["_role", "_ssl"])
def test_the_dtls_transport_keeps(pc, name):
    dtls = pc.sctp.transport
    assert isinstance(dtls, RTCDtlsTransport)
    assert hasattr(dtls, name), f"aiortc's RTCDtlsTransport lost {name}: {WHERE}"


def test_dtls_role_and_certificate_read_through_the_fence(pc):
    assert rtc.dtls_role(pc.sctp.transport) in ("auto", "client", "server")
    assert rtc.dtls_peer_certificate(pc.sctp.transport) is None  # no handshake yet: no remote certificate


def test_the_ice_gatherer_keeps_remote_candidates_end(pc):
    gatherer = pc.sctp.transport.transport.iceGatherer
    assert isinstance(gatherer, RTCIceGatherer)
    assert hasattr(gatherer, "_remote_candidates_end"), f"aiortc's RTCIceGatherer lost _remote_candidates_end: {WHERE}"
    assert rtc.remote_candidates_ended(pc) is False


def test_the_ice_transport_keeps_its_aioice_connection(pc):
    assert hasattr(pc.sctp.transport.transport, "_connection"), f"aiortc's RTCIceTransport lost _connection: {WHERE}"
    assert rtc.ice_connection(pc) is not None and rtc.ice_connection(pc).local_candidates


def test_an_aioice_candidate_keeps_its_network_host():
    c = Candidate.from_sdp("1 1 udp 2130706431 127.0.0.1 5000 typ host")
    assert hasattr(c, "_network_host"), "aioice's Candidate lost _network_host: mend p2pdiag/webrtc/ice.py"
    assert ice.resolved_address(c) == "127.0.0.1"
