"""The py-libp2p side: a host p2pdiag controls, streams on a chosen connection, error kinds.

Everything p2pdiag's probes and WebRTC upgrade need from py-libp2p goes through here, so a change
in the library is mended in one file (the test peers in p2pdiag/peers/ use its public API
themselves). What this door takes from the library's private side is pinned by
tests/unit/test_libp2p_pins.py: `_mk_identify_protobuf`, and the swarm's
`event_background_nursery_created` and `transport_manager.set_background_nursery`, and GossipSub's
`_do_px` (overridden by watch's light peers, which must never follow peer exchange).
py-libp2p is imported only when a function here runs, so importing this module stays cheap.

Beside it, the lower layer p2pdiag has of its own, with no py-libp2p: TCP and WebSocket dials
(`dial_raw`, used by `dial_in_steps` with an upgrade and a nursery), multistream-select both ways
(`select`, `negotiate_inbound`), `LocalPeer` (our identify answer), peer ids as bytes and text, and
the link exceptions its connections raise (`StreamReset` …), named as py-libp2p's so `classify`
gives them the same kinds.
"""

from __future__ import annotations

import contextlib
import errno
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from p2pdiag.trace.events import ErrorKind
from p2pdiag.wire import pb

MAX_DELIMITED_BYTES = 64 * 1024


def make_host(key_pair: Any = None, announce: Callable[[], list[str]] | None = None) -> Any:
    """A py-libp2p host that dials TCP and WebSocket, with no discovery of its own.

    `announce` gives the addresses identify should advertise (without /p2p/<our id>): a
    listener's relayed addresses. py-libp2p's identify handler waits 0.5 s for the host to
    have an address before answering, so a host with none answers identify slowly.
    """
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.network.config import RetryConfig
    from multiaddr import Multiaddr

    from p2pdiag.probes import caps

    caps.install()  # p2pdiag's read caps in front of py-libp2p's readers
    host = new_host(
        key_pair=key_pair or create_new_key_pair(),
        enable_mDNS=False,
        enable_upnp=False,
        enable_tcp=True,
        enable_websocket=True,
        bootstrap=None,
        addrs_factory=(lambda _candidates: [Multiaddr(a) for a in announce()]) if announce else None,
    )
    # One dial attempt per address: p2pdiag times and reports each attempt itself.
    host.get_network().retry_config = RetryConfig(max_retries=0)
    return host


@asynccontextmanager
async def running(host: Any, listen_addrs: list[str] | None = None) -> AsyncIterator[Any]:
    from multiaddr import Multiaddr

    async with host.run(listen_addrs=[Multiaddr(a) for a in (listen_addrs or [])]):
        network = host.get_network()
        await network.event_background_nursery_created.wait()
        async with trio.open_nursery() as nursery:
            # py-libp2p's WebSocket transport starts trio-websocket's reader task in the swarm's
            # background nursery: a relay that answers the upgrade with HTTP 200, or with bytes that
            # are not HTTP, raised there and ended the whole host, and one that closed at once left
            # the dial waiting for its timeout. In this nursery the reader's end reaches the dial.
            network.transport_manager.set_background_nursery(_WebSocketReaders(nursery))
            try:
                yield host
            finally:
                nursery.cancel_scope.cancel()


UNLIMITED_CONNECTIONS = 1_000_000


async def own_connections_only(host: Any) -> None:
    """Make a running host's connections its probes' alone: py-libp2p's auto-connector dials the
    peers in the peerstore whenever the host has fewer connections than its watermark (every 30 s,
    more often below its minimum), and its swarm refuses dials past 300 connections, prunes past
    300 and trims a peer's connections past 3 (the oldest idle first: a held relay reservation's).
    Watch opens and closes every connection itself and bounds how many, so the auto-connector is
    stopped and the limits lifted. Call it inside `running` (the swarm starts the auto-connector)."""
    network = host.get_network()
    await network.auto_connector.stop()
    config = network.connection_config
    config.max_connections = config.high_watermark = config.max_connections_per_peer = UNLIMITED_CONNECTIONS
    # ...and py-libp2p's resource manager goes: it refuses a ninth connection to one peer (a relay
    # every peer target dials through), and its circuit breaker refuses dials to a peer that failed
    # recently, which would report a node that came back as still down. Its refusals read as the
    # peer's failure (a SwarmException), so watch must never meet one.
    network.set_resource_manager(None, enable_stream_semaphore=False)


class _WebSocketDial:
    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.pending = True
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        if self.pending and self.error is None:
            self.error = error
            self.scope.cancel()


_websocket_dials: dict[Any, _WebSocketDial] = {}  # the dialing task -> its dial


class _WebSocketReaders:
    """The nursery py-libp2p's WebSocket transport starts background tasks in, with each task's end
    delivered to the dial that started it while that dial still waits for the upgrade."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start_soon(self, fn: Callable[..., Any], *args: Any, name: Any = None) -> None:
        dial = _websocket_dials.get(trio.lowlevel.current_task())
        self._nursery.start_soon(self._watch, fn, args, dial, name=name or fn)

    async def start(self, fn: Callable[..., Any], *args: Any, name: Any = None) -> Any:
        return await self._nursery.start(fn, *args, name=name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nursery, name)

    @staticmethod
    async def _watch(fn: Callable[..., Any], args: tuple[Any, ...], dial: _WebSocketDial | None) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            if not is_network_failure(exc):
                raise
            if dial is not None:
                dial.fail(exc)
            return  # after the upgrade, the connection's own reads report how it ended
        if dial is not None:
            dial.fail(WebSocketUpgradeFailed("the relay closed the connection during the WebSocket upgrade",
                                             ErrorKind.CLOSED))


def _websocket_failure(exc: BaseException) -> WebSocketUpgradeFailed:
    if isinstance(exc, WebSocketUpgradeFailed):
        return exc
    status = getattr(exc, "status_code", None)
    if _is(exc, "trio_websocket", "ConnectionRejected") and status is not None:
        return WebSocketUpgradeFailed(f"the relay answered the WebSocket upgrade with HTTP {status} instead of "
                                      "101 Switching Protocols")
    return WebSocketUpgradeFailed(f"the relay's answer to the WebSocket upgrade is not valid HTTP "
                                  f"({type(exc).__name__}: {exc})")


def library_error(kind: str, message: str) -> Exception:
    """One of p2pdiag's own link exceptions (below), by the name py-libp2p gives the same failure, for
    p2pdiag's own yamux (probes/yamux.py), Noise (probes/noise.py) and watch's dialer to raise: KIND is
    StreamEOF, StreamReset, StreamClosed, ProtocolNotSupportedError, MultiselectClientError,
    SecurityUpgradeFailure or MuxerUpgradeFailure. `classify` names them as it names py-libp2p's."""
    cls = _LINK_ERRORS.get(kind)
    if cls is None:
        raise ValueError(f"no link exception {kind}")
    return cls(message)


def noise_transport(key_pair: Any) -> Any:
    """py-libp2p's Noise transport for KEY_PAIR (the host's identity), with a Noise key of its own, as
    `new_host` makes it: `secure_outbound(raw, peer_id)` runs the XX handshake and checks the peer id."""
    from libp2p.crypto.x25519 import create_new_key_pair
    from libp2p.security.noise.transport import Transport

    return Transport(key_pair, noise_privkey=create_new_key_pair().private_key)


def load_libp2p() -> None:
    """Import py-libp2p now (watch freezes the garbage collector's view of it after)."""
    import libp2p  # noqa: F401


def ed25519_key_pair(seed: bytes | None = None) -> Any:
    """A py-libp2p Ed25519 key pair, from a 32-byte seed or a new random one."""
    from libp2p.crypto.ed25519 import create_new_key_pair

    return create_new_key_pair(seed)


class LocalPeer:
    """p2pdiag's own side of the connections it makes without py-libp2p (`dial_in_steps` with an
    upgrade and a nursery): its key pair (`identity.KeyPair`) and what its identify answer says."""

    def __init__(self, key_pair: Any, protocols: tuple[str, ...] = ()) -> None:
        from p2pdiag import __version__

        self.key_pair = key_pair
        self.peer_id = key_pair.peer_id
        self.protocols = protocols
        self.agent_version = f"p2pdiag/{__version__}"

    def identify_message(self) -> bytes:
        """Identify: our public key, the protocols we answer, no listen address (we listen nowhere)."""
        return pb.join([pb.field_bytes(1, self.key_pair.public_key),
                        *(pb.field_bytes(3, p) for p in self.protocols),
                        pb.field_bytes(5, "ipfs/0.1.0"), pb.field_bytes(6, self.agent_version)])


def identify_message(host: Any) -> bytes:
    """The host's own identify message, encoded, as py-libp2p's identify handler sends it (a
    `LocalPeer`'s own without py-libp2p).

    py-libp2p builds it in a private helper (pinned by a test): the one place it is used."""
    if isinstance(host, LocalPeer):
        return host.identify_message()
    from libp2p.identity.identify.identify import _mk_identify_protobuf

    return _mk_identify_protobuf(host, None).SerializeToString()


def relayed_raw_connection(stream: Any, initiator: bool, relay_peer_id: str, remote_peer_id: str) -> Any:
    """A py-libp2p raw connection over `stream` (a circuit stream), for the swarm to secure and mux."""
    from libp2p.connection_types import ConnectionType
    from libp2p.network.connection.raw_connection import RawConnection
    from multiaddr import Multiaddr

    return RawConnection(
        stream=stream,
        initiator=initiator,
        connection_type=ConnectionType.RELAYED,
        addresses=[Multiaddr(f"/p2p/{relay_peer_id}/p2p-circuit/p2p/{remote_peer_id}")],
    )


MULTISTREAM_PROTOCOL = "/multistream/1.0.0"
MAX_NEGOTIATION_BYTES = 1024  # one multistream-select message
MAX_PROPOSALS = 16  # protocols a peer may propose on one stream before it is refused


async def negotiate_inbound(stream: Any, handlers: dict[str, Any], timeout_s: float) -> tuple[Any, Any]:
    """multistream-select as the answering side: (protocol, its handler) from `handlers`. Our header
    goes first; each proposal we have no handler for is answered "na", at most MAX_PROPOSALS of them."""
    with trio.fail_after(timeout_s):
        await stream.write(_ms(MULTISTREAM_PROTOCOL))
        header = await _read_ms(stream)
        if header != MULTISTREAM_PROTOCOL:
            raise MultiselectError(f"the peer speaks {header[:80]!r}, not {MULTISTREAM_PROTOCOL}")
        for _ in range(MAX_PROPOSALS):
            proposal = await _read_ms(stream)
            if proposal in handlers:
                await stream.write(_ms(proposal))
                return proposal, handlers[proposal]
            await stream.write(_ms("na"))
    raise MultiselectError(f"the peer proposed {MAX_PROPOSALS} protocols, none of them ours")


def multistream_message(text: str) -> bytes:
    """One multistream-select message."""
    return pb.length_prefixed(f"{text}\n".encode())


_ms = multistream_message


async def _read_ms(stream: Any) -> str:
    """One multistream-select message: a length-prefixed line that ends with its newline (else the
    peer does not speak multistream-select at all: malformed, as py-libp2p's reader says too)."""
    raw = await read_delimited(stream, MAX_NEGOTIATION_BYTES)
    if not raw.endswith(b"\n"):
        raise pb.MalformedMessage(f"a multistream-select message of {len(raw)} bytes without its newline")
    return raw[:-1].decode("utf-8", "replace")


async def select(rw: Any, protocol: str) -> None:
    """multistream-select as the dialer on RW (its read and write), the header and the protocol in
    one write (as every libp2p dialer may): one packet and one round trip instead of two. Raises
    ProtocolNotSupportedError for an "na", MultiselectClientError for any other answer."""
    await rw.write(_ms(MULTISTREAM_PROTOCOL) + _ms(protocol))
    header = await _read_ms(rw)
    if header != MULTISTREAM_PROTOCOL:  # judged before the answer, which such a peer may never send
        if not header.startswith("/multistream/"):
            raise pb.MalformedMessage(f"not multistream-select: the peer's first message is {header[:80]!r}")
        raise MultiselectClientError(f"the peer speaks {header[:80]!r}, not {MULTISTREAM_PROTOCOL}")
    answer = await _read_ms(rw)
    if answer == "na":
        raise ProtocolNotSupportedError(f"the peer does not support {protocol}")
    if answer != protocol:
        raise MultiselectClientError(f"the peer answered {answer[:80]!r} to {protocol}")


def peer_id_from_string(text: str) -> Any:
    from libp2p.peer.id import ID

    return ID.from_base58(text)


def peer_id_from_bytes(raw: bytes) -> str:
    """A peer id's bytes (a multihash) as its base58 text."""
    from p2pdiag.wire.envelope import b58encode

    return b58encode(raw)


def peer_id_bytes(text: str) -> bytes:
    """A base58 peer id's bytes, as HOP CONNECT carries them (no py-libp2p: `peer_id_from_string`
    is py-libp2p's ID, for its peerstore and swarm)."""
    from p2pdiag.wire.envelope import peer_id_bytes as from_base58

    return from_base58(text)


def multiaddr_to_string(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    from multiaddr import Multiaddr

    try:
        return str(Multiaddr(raw))
    except Exception:  # noqa: BLE001  (bytes from a peer: the multiaddr package raises many types)
        return f"<undecodable multiaddr 0x{raw.hex()}>"


async def dial(host: Any, addr: str, peer_id: str) -> Any:
    """One dial of one address; returns the swarm connection (SwarmConn).

    Always a new connection: the swarm's `dial_addr` opens one even when it holds others to the
    peer, and this returns that new one (the watch probes rely on it)."""
    from multiaddr import Multiaddr

    await forget_closed_websockets(host.get_network())
    return await _watching_websocket(host.get_network().dial_addr, Multiaddr(addr), peer_id_from_string(peer_id))


async def dial_in_steps(host: Any, addr: str, peer_id: str, reached: Callable[[], None],
                        upgrade: Callable[[Any, str], Awaitable[Any]] | None = None,
                        nursery: trio.Nursery | None = None) -> Any:
    """As `dial`, in the swarm's two steps, calling `reached()` between them: once the transport
    connected (TCP accepted, the WebSocket upgraded), before Noise and the muxer. A peer that
    accepts TCP and never completes a handshake is then told from one that refuses it.

    `upgrade(raw, peer_id)` secures and muxes the raw connection instead of the swarm (watch's
    own Noise and yamux, probes/noise.py and probes/yamux.py); with it and a NURSERY (where a
    WebSocket's reader runs), the transport is p2pdiag's own too (`dial_raw`) and HOST is not used:
    py-libp2p is not imported."""
    if upgrade is not None and nursery is not None:
        raw = await dial_raw(addr, nursery)
        reached()
        try:
            return await upgrade(raw, peer_id)
        except BaseException:
            with trio.CancelScope(shield=True):  # a timeout too: nothing above owns the raw connection yet
                await close_quietly(raw)
            raise
    from multiaddr import Multiaddr

    network = host.get_network()
    maddr = Multiaddr(addr)
    transport = network.transport_manager.transport_for_dialing(maddr)
    if transport is None:  # the caller dials only transports make_host has: asking for another is a bug
        raise NotImplementedError(f"no transport of this host dials {addr}")
    await forget_closed_websockets(network)
    raw = await _watching_websocket(transport.dial, maddr)
    reached()
    try:
        if upgrade is not None:
            return await upgrade(raw, peer_id)
        return await network.upgrade_outbound_raw_conn(raw, peer_id_from_string(peer_id))
    except BaseException:
        with trio.CancelScope(shield=True):  # a timeout too: the swarm does not own the raw connection yet
            await close_quietly(raw)
        raise


# --- p2pdiag's own transports: TCP and WebSocket, without py-libp2p ------------------------------

RAW_READ_BYTES = 65536


def dial_target(addr: str) -> tuple[str, int, str]:
    """(host, port, transport "tcp" or "ws") of a multiaddr p2pdiag dials itself: /ip4|ip6|dns|dns4|dns6
    /HOST/tcp/PORT[/ws][/p2p/ID]. NotImplementedError for any other (the callers dial only these)."""
    parts = addr.strip("/").split("/")
    if len(parts) < 4 or parts[0] not in ("ip4", "ip6", "dns", "dns4", "dns6") or parts[2] != "tcp":
        raise NotImplementedError(f"p2pdiag does not dial {addr} itself")
    rest = parts[4:]
    if rest[-2:-1] == ["p2p"]:
        rest = rest[:-2]
    if rest not in ([], ["ws"]):
        raise NotImplementedError(f"p2pdiag does not dial {addr} itself")
    return parts[1], int(parts[3]), "ws" if rest else "tcp"


class TcpConnection:
    """A TCP connection as a raw connection: read (at most N bytes; b"" at EOF), write, close."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream

    async def read(self, n: int | None = None) -> bytes:
        return await self.stream.receive_some(n if n and n > 0 else RAW_READ_BYTES)

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def close(self) -> None:
        await self.stream.aclose()

    def get_remote_address(self) -> tuple[str, int] | None:
        with contextlib.suppress(OSError):
            return tuple(self.stream.socket.getpeername()[:2])  # type: ignore[return-value]
        return None


class WebSocketConnection:
    """A WebSocket (binary messages) as a raw connection: reads hand out what the messages carried."""

    def __init__(self, ws: Any, remote: tuple[str, int]) -> None:
        self.ws = ws
        self._remote = remote
        self._buffer = b""

    async def read(self, n: int | None = None) -> bytes:
        while not self._buffer:
            message = await self.ws.get_message()  # trio-websocket bounds a message (1 MiB)
            self._buffer = message.encode() if isinstance(message, str) else bytes(message)
        take = len(self._buffer) if n is None or n < 0 else n
        out, self._buffer = self._buffer[:take], self._buffer[take:]
        return out

    async def write(self, data: bytes) -> None:
        await self.ws.send_message(bytes(data))

    async def close(self) -> None:
        await self.ws.aclose()

    def get_remote_address(self) -> tuple[str, int]:
        return self._remote


async def dial_raw(addr: str, nursery: trio.Nursery) -> Any:
    """A TCP or WebSocket connection to ADDR, dialed by p2pdiag itself (trio, trio-websocket); the
    WebSocket's reader runs in NURSERY, its end before the upgrade delivered to this dial."""
    host, port, transport = dial_target(addr)
    if transport == "tcp":
        return TcpConnection(await trio.open_tcp_stream(host, port))
    from trio_websocket import connect_websocket

    ws = await _watching_websocket(functools.partial(connect_websocket, use_ssl=False), _WebSocketReaders(nursery),
                                   host, port, "/")
    return WebSocketConnection(ws, (host, port))


async def forget_closed_websockets(network: Any) -> int:
    """Untrack the closed connections py-libp2p's WebSocket transport still tracks; how many.

    py-libp2p 0.8.1's WebsocketTransport tracks every connection it dials and never untracks one:
    each stays in memory, and past its 1,000th dial every WebSocket dial fails with "Maximum
    connections reached", which would read as the peer's failure (a watch dials WebSocket addresses
    every probe). Called before each dial; private parts, pinned by tests/unit/test_libp2p_pins.py."""
    forgotten = 0
    for transport in network.transport_manager.get_transports():
        tracked, untrack = getattr(transport, "_connections", None), getattr(transport, "_untrack_connection", None)
        if not isinstance(tracked, dict) or untrack is None:
            continue
        for conn in [c for c in tracked.values() if getattr(c, "_closed", False)]:
            await untrack(conn)
            forgotten += 1
    return forgotten


async def _watching_websocket(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a dial with its WebSocket reader's end delivered to it (`_WebSocketReaders`)."""
    dial = _WebSocketDial()
    task = trio.lowlevel.current_task()
    _websocket_dials[task] = dial
    try:
        with dial.scope:
            return await fn(*args)
        if dial.error is not None:
            raise _websocket_failure(dial.error) from dial.error
        raise trio.TooSlowError  # the scope was cancelled with no error: cannot happen; a timeout at worst
    finally:
        dial.pending = False
        _websocket_dials.pop(task, None)


def negotiated(conn: Any) -> tuple[str | None, str | None]:
    security = muxer = None
    # details for the trace: not every py-libp2p connection can tell, and it is no failure if not
    with contextlib.suppress(Exception):
        security = conn.get_negotiated_security_protocol()
    with contextlib.suppress(Exception):
        muxer = conn.get_negotiated_muxer_protocol()
    if muxer is None:
        muxed = getattr(conn, "muxed_conn", None)
        muxer = type(muxed).__name__.lower() if muxed is not None else None
    return security, muxer


async def open_stream(conn: Any, protocol: str, timeout_s: float) -> Any:
    """Open a stream on exactly this connection and negotiate `protocol` with multistream-select."""
    if (selected := getattr(conn, "open_selected_stream", None)) is not None:  # probes/yamux.py's
        with trio.fail_after(timeout_s):
            return await selected(protocol)
    if not type(conn).__module__.startswith("libp2p"):  # p2pdiag's own (WebRTC): its own multistream-select
        with trio.fail_after(timeout_s):
            stream = await conn.new_stream()
            try:
                await select(stream, protocol)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await reset_quietly(stream)
                raise
            stream.set_protocol(protocol)
        return stream
    from libp2p.protocol_muxer.multiselect_client import MultiselectClient
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator

    with trio.fail_after(timeout_s):
        stream = await conn.new_stream()
        try:
            # handshake + try_select rather than select_one_of, which reports "na" and a broken
            # negotiation alike (MultiselectClientError): try_select keeps ProtocolNotSupportedError
            client, communicator = MultiselectClient(), MultiselectCommunicator(stream)
            await client.handshake(communicator)
            await client.try_select(communicator, protocol)
        except BaseException:
            await reset_quietly(stream)
            raise
        stream.set_protocol(protocol)
    return stream


async def reset_quietly(stream: Any) -> None:
    with contextlib.suppress(Exception):  # best-effort cleanup: a stream already gone may raise anything
        await stream.reset()


async def close_quietly(obj: Any) -> None:
    with contextlib.suppress(Exception), trio.move_on_after(2):  # best-effort cleanup, as reset_quietly
        await obj.close()


async def read_exactly(stream: Any, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = await stream.read(n - len(out))
        if not chunk:
            raise EOFError(f"stream ended after {len(out)} of {n} bytes")
        out += chunk
    return out


async def read_delimited(stream: Any, max_bytes: int = MAX_DELIMITED_BYTES) -> bytes:
    """Read one uvarint-length-prefixed message."""
    prefix = b""
    while True:
        byte = await read_exactly(stream, 1)
        prefix += byte
        if not byte[0] & 0x80:
            break
        if len(prefix) >= pb.MAX_VARINT_BYTES:
            raise pb.MalformedMessage("length prefix longer than 10 bytes")
    length, _ = pb.decode_varint(prefix)
    if length > max_bytes:
        raise pb.MalformedMessage(f"message of {length} bytes announced, more than the {max_bytes} allowed")
    return await read_exactly(stream, length)


async def write_delimited(stream: Any, payload: bytes) -> None:
    await stream.write(pb.length_prefixed(payload))


# --- GossipSub: watch's light peers ------------------------------------------------------------

# What a light peer offers, newest first: py-libp2p 0.8.1 speaks meshsub 1.0 to 2.0, js-libp2p's
# @libp2p/gossipsub 17 meshsub 1.0 to 1.2; multistream-select settles on the first both know.
MESHSUB_PROTOCOLS = ("/meshsub/1.2.0", "/meshsub/1.1.0", "/meshsub/1.0.0")


def gossipsub_router(heartbeat_s: float = 1.0) -> Any:
    """py-libp2p's GossipSub for a light peer that must stay a leaf of the mesh it watches.

    It emits no peer exchange, and it *follows* none: py-libp2p dials the peers a PRUNE's PX lists
    whatever `do_px` says, so `_do_px` is replaced by a no-op (pinned by tests/unit/test_libp2p_pins.py).
    Mesh degrees are the spec's defaults; a light peer is attached to one node anyway. py-libp2p's
    spam protection is off: it drops what one peer forwards past 10 messages a second on a topic, so
    on a busy chat topic the canaries its attach node forwards would be dropped and counted lost.
    """
    from libp2p.custom_types import TProtocol
    from libp2p.pubsub.gossipsub import GossipSub

    class _LightGossipSub(GossipSub):
        async def _do_px(self, px_peers: Any) -> None:
            self.px_ignored = getattr(self, "px_ignored", 0) + len(px_peers)

    return _LightGossipSub(
        protocols=[TProtocol(p) for p in MESHSUB_PROTOCOLS], degree=6, degree_low=4, degree_high=12,
        heartbeat_interval=heartbeat_s, do_px=False, direct_peers=None, spam_protection_enabled=False,
    )


@asynccontextmanager
async def pubsub_running(host: Any, router: Any, topic: str,
                         validate: Callable[[str, bytes, bytes], bool]) -> AsyncIterator[Any]:
    """Pubsub with `router` on a running host, subscribed to `topic` (and to no other peer's topic but it).

    `validate(forwarder_peer_id, data, origin_peer_id_bytes)` sees every message of the topic first,
    once per message id. The subscription queue is drained and dropped: the caller learns of a
    message through `validate` only. Messages are signed (js-libp2p's default is StrictSign) and
    their ids are origin + seqno, as js-libp2p's default for signed messages.
    """
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service.context import background_trio_service

    pubsub = Pubsub(host, router, strict_signing=True, allowed_topics={topic})
    pubsub.set_topic_validator(
        topic, lambda forwarder, msg: validate(forwarder.to_base58(), msg.data, msg.from_id), False)
    async with background_trio_service(pubsub), background_trio_service(router):
        await pubsub.wait_until_ready()
        subscription = await pubsub.subscribe(topic)
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                with contextlib.suppress(trio.EndOfChannel, trio.ClosedResourceError):
                    while True:
                        await subscription.get()

            nursery.start_soon(drain)
            try:
                yield pubsub
            finally:
                nursery.cancel_scope.cancel()


def pubsub_view(pubsub: Any, topic: str) -> tuple[list[str], list[str], dict[str, str]]:
    """(mesh peers, peers known subscribed, meshsub protocol per peer) of a light peer on `topic`."""
    router = pubsub.router
    mesh = sorted(p.to_base58() for p in router.mesh.get(topic, ()))
    subscribed = sorted(p.to_base58() for p in pubsub.peer_topics.get(topic, ()))
    protocols = {p.to_base58(): str(proto) for p, proto in router.peer_protocol.items()}
    return mesh, subscribed, protocols


async def publish(pubsub: Any, topic: str, data: bytes) -> None:
    await pubsub.publish(topic, data)


def connected_peers(host: Any) -> list[str]:
    return [p.to_base58() for p in host.get_network().connections]


async def hang_up(host: Any, peer_id: str) -> None:
    with contextlib.suppress(Exception):  # best-effort: a connection already gone may raise anything
        await host.get_network().close_peer(peer_id_from_string(peer_id))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the members of exception groups among them."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        cur = todo.pop(0)
        if cur in seen:
            continue
        seen.append(cur)
        todo += list(getattr(cur, "exceptions", ()) or ())
        nxt = cur.__cause__ or cur.__context__
        if nxt is not None:
            todo.append(nxt)
    return seen


class NetworkFailure(Exception):
    """A failure of the network or of a peer that p2pdiag itself detected (not a library's exception)."""


class WebSocketUpgradeFailed(NetworkFailure):
    """The relay's answer to the WebSocket upgrade was not 101 Switching Protocols, or not HTTP at all."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.WEBSOCKET_UPGRADE_FAILED) -> None:
        super().__init__(message)
        self.kind = kind


# p2pdiag's own link exceptions, for the connections p2pdiag makes itself (its TCP and WebSocket
# dials, probes/noise.py, probes/yamux.py, the WebRTC streams): named as py-libp2p names the same
# failures, so `classify` (which matches classes by name, in both) gives them the same kinds.
class StreamError(NetworkFailure):
    """A stream failed."""


class StreamEOF(StreamError, EOFError):
    """The stream ended (the peer closed its side, or the connection ended cleanly under it)."""


class StreamReset(StreamError):
    """The stream was reset."""


class StreamClosed(StreamError):
    """The stream (or the connection under it) is closed: nothing more can be sent or opened."""


class ProtocolNotSupportedError(NetworkFailure):
    """multistream-select: the peer answered "na"."""


class MultiselectClientError(NetworkFailure):
    """multistream-select broke: another version of it, or an answer that is no protocol name."""


class MultiselectError(MultiselectClientError):
    """multistream-select as the answering side broke."""


class SecurityUpgradeFailure(NetworkFailure):
    """Securing a connection failed (the /noise selection, or the handshake: see its cause)."""


class MuxerUpgradeFailure(NetworkFailure):
    """Negotiating the muxer failed."""


class HandshakeFailure(SecurityUpgradeFailure):
    """The Noise handshake failed: a message that did not decrypt, a payload that did not verify."""


class PeerIDMismatchesPubkey(HandshakeFailure):
    """The peer's identity key is not the peer id dialed."""


_LINK_ERRORS: dict[str, type[NetworkFailure]] = {c.__name__: c for c in (
    StreamError, StreamEOF, StreamReset, StreamClosed, ProtocolNotSupportedError, MultiselectClientError,
    MultiselectError, SecurityUpgradeFailure, MuxerUpgradeFailure, HandshakeFailure, PeerIDMismatchesPubkey)}


# The libraries whose own exception classes are failures of the network or the peer: py-libp2p's,
# its WebSocket stack's (trio-websocket, h11, wsproto) and aiortc's. The builtin exceptions they
# raise (AttributeError, TypeError ...) are not in this rule: those are told by where they came from.
LIBRARY_PACKAGES = frozenset({"libp2p", "trio_websocket", "h11", "wsproto", "aiortc", "aioice"})
# Builtin exceptions that are a programming error wherever they come from p2pdiag's own code.
BUG_TYPES: tuple[type[BaseException], ...] = (
    ArithmeticError, AssertionError, AttributeError, ImportError, LookupError, NameError, NotImplementedError,
    TypeError,
)
_NETWORK_TYPES: tuple[type[BaseException], ...] = (
    OSError, EOFError, trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, pb.MalformedMessage,
    NetworkFailure,
)


def _from_library(exc: BaseException) -> bool:
    return any(k.__module__.split(".")[0] in LIBRARY_PACKAGES for k in type(exc).__mro__)


def _causes(exc: BaseException) -> list[BaseException]:
    out, cur = [], exc.__cause__
    while cur is not None and len(out) < 20:
        out.append(cur)
        cur = cur.__cause__
    return out


def _refused_by_own_host(exc: BaseException) -> bool:
    """py-libp2p's resource manager (the local host's limits) refused the connection: its
    ResourceLimitExceeded, raised on as a SwarmException("Connection denied by …"); or its WebSocket
    transport's count of the connections it dialed did."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 40:
        cur = todo.pop()
        if cur is None or any(cur is s for s in seen):
            continue
        seen.append(cur)
        if _is(cur, "libp2p", "ResourceLimitExceeded") or (
                _from_library(cur) and str(cur).startswith("Connection denied by")):
            return True
        if _is(cur, "libp2p", "OpenConnectionError") and "Maximum connections reached" in str(cur):
            return True  # the WebSocket transport's own count (forget_closed_websockets keeps it down)
        todo += [cur.__cause__, cur.__context__]
    return False


def is_network_failure(exc: BaseException) -> bool:
    """True for a failure of the network or a peer, False for a bug in p2pdiag.

    By type: the OS's, trio's and p2pdiag's own network and codec exceptions, and the exception
    classes of the libraries above; an exception group is one when every member is. A library
    exception raised *from* a programming error (py-libp2p wraps what a p2pdiag callback raised)
    is the programming error.
    """
    if isinstance(exc, BaseExceptionGroup):
        members = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        return bool(members) and all(is_network_failure(e) for e in members)
    if not (isinstance(exc, _NETWORK_TYPES) or _from_library(exc)):
        return False
    if _refused_by_own_host(exc):
        return False  # p2pdiag's own host refused it (its resource manager): never the peer's fault
    return not any(isinstance(c, BUG_TYPES) and not _from_library(c) for c in _causes(exc))


def raised_in_p2pdiag(exc: BaseException) -> bool:
    """Whether the innermost frame of the exception's traceback is p2pdiag's own code."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith("p2pdiag.")


def _is(exc: BaseException, module: str, *names: str) -> bool:
    """isinstance against a library's classes named here, without importing the library; for "libp2p",
    p2pdiag's own link exceptions of the same names too."""
    modules = (module, __name__) if module == "libp2p" else (module,)
    return any(k.__name__ in names and k.__module__.startswith(modules) for k in type(exc).__mro__)


def _kind_of(e: BaseException) -> ErrorKind | None:
    if isinstance(e, WebSocketUpgradeFailed):
        return e.kind
    if (_is(e, "trio_websocket", "HandshakeError") or _is(e, "h11", "ProtocolError")
            or _is(e, "wsproto", "ProtocolError")):
        return ErrorKind.WEBSOCKET_UPGRADE_FAILED
    if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
        return ErrorKind.REFUSED
    if isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return ErrorKind.UNREACHABLE
    if _is(e, "libp2p", "PeerIDMismatchesPubkey"):
        return ErrorKind.PEER_ID_MISMATCH
    if _is(e, "libp2p", "ProtocolNotSupportedError"):
        return ErrorKind.PROTOCOL_UNSUPPORTED
    if _is(e, "libp2p", "StreamReset", "MuxedStreamReset") or isinstance(e, ConnectionResetError):
        return ErrorKind.RESET
    if (isinstance(e, (EOFError, BrokenPipeError, ConnectionAbortedError, trio.BrokenResourceError,
                       trio.ClosedResourceError))
            or _is(e, "libp2p", "StreamClosed", "MuxedStreamClosed", "IncompleteReadError", "ConnectionClosedError",
                   "RawConnError")
            or _is(e, "trio_websocket", "ConnectionClosed")):
        return ErrorKind.CLOSED
    return None


# The order in which a chain's kinds win: a timeout or a bad message explains the layers above it;
# a reset or an end of stream under a negotiation explains the negotiation's failure.
_PRECEDENCE = (
    ErrorKind.TIMEOUT, ErrorKind.MALFORMED, ErrorKind.WEBSOCKET_UPGRADE_FAILED, ErrorKind.REFUSED,
    ErrorKind.UNREACHABLE, ErrorKind.PEER_ID_MISMATCH, ErrorKind.PROTOCOL_UNSUPPORTED, ErrorKind.RESET,
    ErrorKind.CLOSED,
)


def classify(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map a failure of the network or a peer to a kind and a readable message, by the exceptions' types.

    Anything else is a bug in p2pdiag: `classify` raises it again (call it in an `except` block),
    so it reaches the CLI's error boundary instead of being recorded as the network's fault.
    """
    if not is_network_failure(exc):
        raise exc
    chain = [e for e in _chain(exc) if not isinstance(e, trio.Cancelled)]
    texts = [str(e) for e in chain if str(e)]
    os_errors = [e for e in chain if isinstance(e, OSError) and e.errno]
    if os_errors:
        # the operating system's own words are the clearest ("Connection refused")
        message = "; ".join(dict.fromkeys(f"{e.strerror or e}" for e in os_errors))
    else:
        texts = list(dict.fromkeys(texts))
        # the outermost words say what failed, the innermost why
        message = "; ".join(texts[:2] + texts[-1:] if len(texts) > 3 else texts) or type(exc).__name__
    found = set()
    for e in chain:
        if isinstance(e, trio.TooSlowError):
            found.add(ErrorKind.TIMEOUT)
        elif isinstance(e, pb.MalformedMessage):
            found.add(ErrorKind.MALFORMED)
        elif (kind := _kind_of(e)) is not None:
            found.add(kind)
    for kind in _PRECEDENCE:
        if kind in found:
            return kind, message or kind.value
    if any(_is(e, "libp2p", "MultiselectClientError", "MultiselectError", "MultiselectCommunicatorError")
           for e in chain):
        # multistream-select broke without an "na" and without the stream ending: another version
        # of it (/multistream/2.0.0), or an answer that is no protocol name
        return ErrorKind.NEGOTIATION_FAILED, message
    if any(_is(e, "libp2p", "HandshakeFailure", "SecurityUpgradeFailure") for e in chain):
        return ErrorKind.SECURITY_FAILED, message
    if any(_is(e, "libp2p", "MuxerUpgradeFailure") for e in chain):
        return ErrorKind.MUXER_FAILED, message
    return ErrorKind.OTHER, message
