"""Pin what p2pdiag.webrtc.ice takes from aioice's private side (aioice 0.13 is installed).

If aioice changes any of this, these tests fail before a trace silently loses its pair states.
Plain asyncio, loopback only.
"""

from __future__ import annotations

import asyncio
import time

import aioice
import aioice.stun
import pytest
from aioice import Connection

from p2pdiag.webrtc import ice


def test_installed_aioice_is_the_pinned_one():
    assert aioice.__version__.startswith("0.13"), aioice.__version__


def test_the_private_names_exist():
    assert callable(Connection.check_state) and callable(Connection.gather_candidates)
    c = Connection(ice_controlling=True)
    for name in ("_protocols", "_local_candidates", "_check_list", "_nominated", "_components",
                 "_local_candidates_start"):
        assert hasattr(c, name), name
    assert hasattr(aioice.stun, "RETRY_RTO") and hasattr(aioice.stun, "RETRY_MAX")


async def _pair_up(a: Connection, b: Connection) -> None:
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for x, y in ((a, b), (b, a)):
        for c in y.local_candidates:
            await x.add_remote_candidate(c)
        await x.add_remote_candidate(None)
        x.remote_username, x.remote_password = y.local_username, y.local_password


def test_loopback_candidate_and_every_pair_transition_through_check_state():
    seen: list[tuple[str, str, str]] = []
    added = []

    async def main() -> tuple[list[ice.PairView], ice.PairView | None]:
        a, b = Connection(ice_controlling=True, use_ipv6=False), Connection(ice_controlling=False, use_ipv6=False)
        for conn in (a, b):
            ice.add_loopback_on_gather(conn, added.append)
        ice.watch_pairs(a, lambda pair, before: seen.append((f"{pair.local_address}->{pair.remote_address}",
                                                              before, pair.state)))
        await _pair_up(a, b)
        assert any(c.host == ice.LOOPBACK for c in a.local_candidates)
        await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 5)
        result = ice.pairs(a), ice.selected(a)
        await asyncio.gather(a.close(), b.close())
        return result

    pairs, selected = asyncio.run(main())
    assert len(added) == 2 and all(c.host == "127.0.0.1" and c.type == "host" for c in added)
    assert selected is not None and selected.state == "SUCCEEDED" and selected.nominated
    states = {(before, after) for _, before, after in seen}
    assert ("FROZEN", "WAITING") in states and ("IN_PROGRESS", "SUCCEEDED") in states
    # the last transition recorded for each pair is its state in the check list
    last = {key: after for key, _, after in seen}
    for pair in pairs:
        key = f"{pair.local_address}->{pair.remote_address}"
        if key in last:
            assert last[key] == pair.state


def test_retransmit_schedule_is_the_module_globals():
    old = (aioice.stun.RETRY_RTO, aioice.stun.RETRY_MAX)
    transitions: list[str] = []

    async def main() -> float:
        a = Connection(ice_controlling=True, use_ipv6=False)
        ice.add_loopback_on_gather(a, lambda c: None)
        ice.watch_pairs(a, lambda pair, before: transitions.append(pair.state))
        await a.gather_candidates()
        # a remote candidate on a port nobody answers on
        import socket

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        await a.add_remote_candidate(aioice.Candidate(foundation="x", component=1, transport="udp",
                                                      priority=1, host="127.0.0.1", port=port, type="host"))
        await a.add_remote_candidate(None)
        a.remote_username, a.remote_password = "abcd", "a" * 22
        began = time.monotonic()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(a.connect(), 5)
        took = time.monotonic() - began
        s.close()
        await a.close()
        return took

    try:
        assert ice.set_stun_retransmits(0.05, 2) == (0.05, 2)
        took = asyncio.run(main())
    finally:
        ice.set_stun_retransmits(*old)
    assert 0.3 <= took < 5  # 0.05 + 0.1 + 0.2 s, not aioice's default 63.5 s (margin for a loaded machine)
    assert transitions[-1] == "FAILED"


# --- aiortc's SCTP transport (p2pdiag.webrtc.rtc) ------------------------------------------------

OPEN_EMPTY_LABEL = bytes.fromhex("030000000000000000000000")  # DATA_CHANNEL_OPEN as libdatachannel sends it


def _sctp_transport():
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.createDataChannel("init")
    return pc, pc.sctp


def test_aiortc_asserts_on_a_repeated_data_channel_open():
    """What the guard is for: without it a repeated OPEN raises inside aiortc (and ends the connection)."""
    from aiortc.rtcsctptransport import WEBRTC_DCEP

    async def main() -> None:
        pc, transport = _sctp_transport()
        await transport._data_channel_receive(0, WEBRTC_DCEP, OPEN_EMPTY_LABEL)
        with pytest.raises(AssertionError):
            await transport._data_channel_receive(0, WEBRTC_DCEP, OPEN_EMPTY_LABEL)
        await pc.close()

    asyncio.run(main())


def test_a_repeated_data_channel_open_is_dropped_and_reported():
    from aiortc.rtcsctptransport import WEBRTC_BINARY, WEBRTC_DCEP

    from p2pdiag.webrtc import rtc

    repeats: list[tuple[int, str]] = []
    opened = []

    async def main() -> None:
        pc, transport = _sctp_transport()
        transport.on("datachannel", opened.append)
        rtc.ignore_repeated_opens(transport, lambda stream, label: repeats.append((stream, label)))
        await transport._data_channel_receive(0, WEBRTC_DCEP, OPEN_EMPTY_LABEL)
        await transport._data_channel_receive(0, WEBRTC_DCEP, OPEN_EMPTY_LABEL)
        got = []
        opened[0].on("message", got.append)
        await transport._data_channel_receive(0, WEBRTC_BINARY, b"still works")
        assert got == [b"still works"]
        await pc.close()

    asyncio.run(main())
    assert repeats == [(0, "")] and len(opened) == 1


class _StunResponder(asyncio.DatagramProtocol):
    """A real STUN server on loopback: answers each binding request with the sender's address."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        request = aioice.stun.parse_message(data)
        response = aioice.stun.Message(message_method=aioice.stun.Method.BINDING,
                                       message_class=aioice.stun.Class.RESPONSE,
                                       transaction_id=request.transaction_id)
        response.attributes["XOR-MAPPED-ADDRESS"] = addr[:2]
        self.transport.sendto(bytes(response), addr)


def test_bounded_gathering_asks_every_stun_server_and_stops_at_its_bound():
    """`bound_gathering` replaces get_component_candidates and reads stun_server/turn_server (pinned)."""
    queries: list[ice.ServerQuery] = []
    ended: list[tuple[float, tuple]] = []
    saved = aioice.stun.RETRY_RTO, aioice.stun.RETRY_MAX

    async def main() -> list:
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(_StunResponder, local_addr=("127.0.0.1", 0))
        silent, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        port, silent_port = server.get_extra_info("sockname")[1], silent.get_extra_info("sockname")[1]
        conn = Connection(ice_controlling=True, stun_server=("127.0.0.1", port), use_ipv6=False)
        assert conn.stun_server == ("127.0.0.1", port) and conn.turn_server is None
        servers = [ice.StunServer(f"stun:127.0.0.1:{port}", "127.0.0.1", port),
                   ice.StunServer(f"stun:127.0.0.1:{silent_port}", "127.0.0.1", silent_port)]
        ice.bound_gathering(conn, servers, None, 0.4, 1.0, queries.append, lambda d, q: ended.append((d, q)))
        began = time.monotonic()
        candidates = await conn.get_component_candidates(component=1, addresses=["127.0.0.1"])
        took = time.monotonic() - began
        assert conn.stun_server == ("127.0.0.1", port)  # put back after gathering
        await conn.close()
        server.close()
        silent.close()
        return candidates, took

    try:
        aioice.stun.RETRY_RTO, aioice.stun.RETRY_MAX = 0.1, 3  # as UpgradeTimeouts sets them: 1.5 s a check
        candidates, took = asyncio.run(main())
    finally:
        aioice.stun.RETRY_RTO, aioice.stun.RETRY_MAX = saved
    (host,) = [c for c in candidates if c.type == "host"]
    (srflx,) = [c for c in candidates if c.type == "srflx"]
    assert (srflx.host, srflx.port, srflx.related_port) == (host.host, host.port, host.port)
    assert srflx.foundation != ice.candidate_foundation("srflx", "udp", host.host)  # per server, not aioice's
    by_outcome = {q.outcome: q for q in queries}
    assert set(by_outcome) == {"answered", "no_answer"}
    assert by_outcome["answered"].mapped == (host.host, host.port)
    assert 0.35 < by_outcome["no_answer"].duration_s < 3 and by_outcome["no_answer"].bound_s == 0.4
    assert took < 3  # the bound (0.4 s) ended gathering, not aioice's 5 s
    assert len(ended) == 1 and len(ended[0][1]) == 2
