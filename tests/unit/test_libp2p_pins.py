"""p2pdiag.probes.net is the one door to py-libp2p: who else imports it, and what it takes from the private side.

Each pin names the private attribute, so when py-libp2p drops one the failing test says which, and
that p2pdiag/probes/net.py is where to mend it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import trio

from p2pdiag.probes import net
from p2pdiag.wire.identify import Identify

ROOT = Path(__file__).resolve().parents[2] / "p2pdiag"
WHERE = "mend p2pdiag/probes/net.py (the one door to py-libp2p)"


def _imports_libp2p(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "libp2p":
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "libp2p" for a in node.names):
            return True
    return False


def test_only_the_door_imports_py_libp2p():
    # The test peers (p2pdiag/peers/) use py-libp2p's public API themselves: they are peers, not the tool.
    # probes/run.py imports the package only to quiet its logger; probes/caps.py holds the read caps
    # that net.make_host installs in py-libp2p's readers (pinned below).
    tool = [p for p in ROOT.rglob("*.py") if "peers" not in p.parts and p.name != "__main__.py"]
    others = sorted(str(p.relative_to(ROOT)) for p in tool if _imports_libp2p(p))
    assert others == ["probes/caps.py", "probes/net.py", "probes/run.py"], others


def test_the_caps_sit_in_a_real_connection():
    # caps.install() replaces MultiselectCommunicator.read and wraps Yamux.stream_buffers: on a real
    # connection between two hosts made by net.make_host, both must be in place
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator

    from p2pdiag.probes import caps

    where = "mend p2pdiag/probes/caps.py"

    async def main() -> None:
        a, b = net.make_host(), net.make_host()
        async with net.running(a, ["/ip4/127.0.0.1/tcp/0"]), net.running(b):
            addr = str(a.get_addrs()[0]).split("/p2p/")[0]
            conn = await net.dial(b, addr, a.get_id().to_base58())
            muxed = conn.muxed_conn
            assert hasattr(muxed, "stream_buffers"), f"py-libp2p's Yamux lost stream_buffers: {where}"
            assert isinstance(muxed.stream_buffers, caps._CappedBuffers), where
            stream = await net.open_stream(conn, "/ipfs/id/1.0.0", 5)
            assert isinstance(muxed.stream_buffers[stream.muxed_stream.stream_id], caps._CappedBuffer), where
            await net.reset_quietly(stream)

    trio.run(main)
    assert MultiselectCommunicator.read.__module__ == caps.__name__, where


def test_the_hostile_peer_finds_the_yamux_frame_writer():
    # p2pdiag/peers/hostile.py (stream-window-flood) writes raw yamux DATA frames past the window
    from libp2p.stream_muxer.yamux import yamux

    where = "mend p2pdiag/peers/hostile.py"
    for name in ("TYPE_DATA", "YAMUX_HEADER_FORMAT"):
        assert hasattr(yamux, name), f"py-libp2p's yamux module lost {name}: {where}"
    assert callable(getattr(yamux.Yamux, "_write_frame", None)), f"py-libp2p's Yamux lost _write_frame: {where}"


def test_the_identify_message_helper_is_there_and_answers():
    import libp2p.identity.identify.identify as identify

    assert hasattr(identify, "_mk_identify_protobuf"), f"py-libp2p lost _mk_identify_protobuf: {WHERE}"

    async def main() -> None:
        host = net.make_host()
        async with net.running(host, ["/ip4/127.0.0.1/tcp/0"]):
            message = Identify.decode(net.identify_message(host))
            assert message.protocols and message.listen_addrs

    trio.run(main)


def test_the_swarm_keeps_what_the_websocket_guard_needs():
    async def main() -> None:
        host = net.make_host()
        network = host.get_network()
        assert hasattr(network, "event_background_nursery_created"), \
            f"py-libp2p's Swarm lost event_background_nursery_created: {WHERE}"
        assert callable(getattr(getattr(network, "transport_manager", None), "set_background_nursery", None)), \
            f"py-libp2p's Swarm lost transport_manager.set_background_nursery: {WHERE}"
        async with net.running(host):
            pass

    trio.run(main)


def test_the_multistream_client_keeps_handshake_and_try_select():
    from libp2p.protocol_muxer.multiselect_client import MultiselectClient

    for name in ("handshake", "try_select"):
        assert callable(getattr(MultiselectClient, name, None)), f"py-libp2p's MultiselectClient lost {name}: {WHERE}"


def test_the_bad_relay_peer_keeps_the_librarys_connect_handler():
    # p2pdiag/peers/badrelay.py hands CONNECT to the library's own (private) handler
    from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol

    assert callable(getattr(CircuitV2Protocol, "_handle_connect", None)), \
        "py-libp2p's CircuitV2Protocol lost _handle_connect: mend p2pdiag/peers/badrelay.py"


def test_the_light_gossipsub_peer_finds_what_it_reaches():
    # watch's light peers (p2pdiag/watch/gossip.py, through net.gossipsub_router and net.pubsub_view):
    # `_do_px` is overridden so a PRUNE's peer exchange is never followed (py-libp2p follows it whatever
    # do_px says), and the mesh, the peers' topics and their meshsub protocol are read as attributes
    from libp2p.pubsub.gossipsub import GossipSub

    assert callable(getattr(GossipSub, "_do_px", None)), f"py-libp2p's GossipSub lost _do_px: {WHERE}"
    router = net.gossipsub_router()
    assert type(router)._do_px is not GossipSub._do_px, WHERE
    for name in ("mesh", "peer_protocol"):
        assert isinstance(getattr(router, name, None), dict), f"py-libp2p's GossipSub lost {name}: {WHERE}"

    async def main() -> None:
        a, b = net.make_host(), net.make_host()
        seen: list[tuple[str, bytes]] = []
        async with net.running(a, ["/ip4/127.0.0.1/tcp/0"]), net.running(b), \
                net.pubsub_running(a, net.gossipsub_router(), "t", lambda f, d, o: True) as pa, \
                net.pubsub_running(b, net.gossipsub_router(), "t", lambda f, d, o: seen.append((f, d)) or True) as pb_:
            assert isinstance(pa.peer_topics, dict), f"py-libp2p's Pubsub lost peer_topics: {WHERE}"
            await net.dial(b, str(a.get_addrs()[0]), a.get_id().to_base58())
            with trio.fail_after(10):
                while a.get_id().to_base58() not in net.pubsub_view(pb_, "t")[0]:  # noqa: ASYNC110  (no event)
                    await trio.sleep(0.05)
            await net.publish(pa, "t", b"x")
            with trio.fail_after(10):
                while not seen:  # noqa: ASYNC110  (the validator fills it)
                    await trio.sleep(0.05)
            assert seen == [(a.get_id().to_base58(), b"x")]
            assert net.pubsub_view(pb_, "t")[2][a.get_id().to_base58()] == net.MESHSUB_PROTOCOLS[0]
            # a PRUNE with peer exchange is not followed
            await router._do_px([object()])
            assert router.px_ignored == 1

    trio.run(main)


def test_the_websocket_transport_still_keeps_what_it_dialed():
    """py-libp2p 0.8.1 tracks each dialed WebSocket connection and never untracks one
    (net.forget_closed_websockets makes up for it). When this fails, py-libp2p forgets them itself:
    the workaround can go."""
    async def main() -> None:
        server = net.make_host()
        async with net.running(server, ["/ip4/127.0.0.1/tcp/0/ws"]):
            addr = f"{server.get_addrs()[0]}".split("/p2p/")[0]
            client = net.make_host()
            async with net.running(client):
                from multiaddr import Multiaddr

                network = client.get_network()
                transport = network.transport_manager.transport_for_dialing(Multiaddr(addr))
                for _ in range(3):
                    raw = await transport.dial(Multiaddr(addr))
                    await raw.close()
                assert len(transport._connections) == 3, f"py-libp2p forgets closed WebSocket connections now: {WHERE}"
                assert await net.forget_closed_websockets(network) == 3 and not transport._connections

    trio.run(main)
