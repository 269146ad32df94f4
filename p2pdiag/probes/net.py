"""The py-libp2p side: a host p2pdiag controls, streams on a chosen connection, error kinds.

Everything p2pdiag needs from py-libp2p goes through here, so a change in the library is
mended in one file.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Callable
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
    from multiaddr import Multiaddr

    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.network.config import RetryConfig

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
        yield host


def peer_id_from_string(text: str) -> Any:
    from libp2p.peer.id import ID

    return ID.from_base58(text)


def peer_id_from_bytes(raw: bytes) -> str:
    from libp2p.peer.id import ID

    return ID(raw).to_base58()


def multiaddr_to_string(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    from multiaddr import Multiaddr

    try:
        return str(Multiaddr(raw))
    except Exception:
        return f"<undecodable multiaddr 0x{raw.hex()}>"


async def dial(host: Any, addr: str, peer_id: str) -> Any:
    """One dial of one address; returns the swarm connection (SwarmConn)."""
    from multiaddr import Multiaddr

    return await host.get_network().dial_addr(Multiaddr(addr), peer_id_from_string(peer_id))


def negotiated(conn: Any) -> tuple[str | None, str | None]:
    security = muxer = None
    try:
        security = conn.get_negotiated_security_protocol()
    except Exception:
        pass
    try:
        muxer = conn.get_negotiated_muxer_protocol()
    except Exception:
        pass
    if muxer is None:
        muxed = getattr(conn, "muxed_conn", None)
        muxer = type(muxed).__name__.lower() if muxed is not None else None
    return security, muxer


async def open_stream(conn: Any, protocol: str, timeout_s: float) -> Any:
    """Open a stream on exactly this connection and negotiate `protocol` with multistream-select."""
    from libp2p.protocol_muxer.multiselect_client import MultiselectClient
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator

    with trio.fail_after(timeout_s):
        stream = await conn.new_stream()
        try:
            await MultiselectClient().select_one_of([protocol], MultiselectCommunicator(stream), max(1, int(timeout_s)))
        except BaseException:
            await reset_quietly(stream)
            raise
        stream.set_protocol(protocol)
    return stream


async def reset_quietly(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:
        pass


async def close_quietly(obj: Any) -> None:
    try:
        with trio.move_on_after(2):
            await obj.close()
    except Exception:
        pass


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


def classify(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map an exception from py-libp2p, trio or the OS to a kind and a readable message."""
    chain = _chain(exc)
    names = [type(e).__name__ for e in chain]
    texts = [str(e) for e in chain if str(e)]
    os_errors = [e for e in chain if isinstance(e, OSError) and e.errno]
    if os_errors:
        # the operating system's own words are the clearest ("Connection refused")
        message = "; ".join(dict.fromkeys(f"{e.strerror or e}" for e in os_errors))
    else:
        message = "; ".join(list(dict.fromkeys(texts))[:3]) or names[0]
    joined = " ".join(texts).lower()
    for e in chain:
        if isinstance(e, trio.TooSlowError):
            return ErrorKind.TIMEOUT, message or "timed out"
        if isinstance(e, pb.MalformedMessage):
            return ErrorKind.MALFORMED, message
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return ErrorKind.REFUSED, message
        if isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return ErrorKind.UNREACHABLE, message
    if "PeerIDMismatchesPubkey" in names or "mismatch" in joined:
        return ErrorKind.PEER_ID_MISMATCH, message
    if "refused" in joined:
        return ErrorKind.REFUSED, message
    if "ProtocolNotSupportedError" in names or "MultiselectClientError" in names or "protocol not supported" in joined:
        return ErrorKind.PROTOCOL_UNSUPPORTED, message
    if any(n in names for n in ("StreamReset", "MuxedStreamReset")) or "reset" in joined:
        return ErrorKind.RESET, message
    if any(n in names for n in ("StreamEOF", "MuxedStreamEOF", "EOFError", "IncompleteReadError",
                                 "StreamClosed", "MuxedStreamClosed", "ConnectionClosedError")):
        return ErrorKind.CLOSED, message
    if "SecurityUpgradeFailure" in names or any("Noise" in n or "Handshake" in n for n in names):
        return ErrorKind.SECURITY_FAILED, message
    if "MuxerUpgradeFailure" in names:
        return ErrorKind.MUXER_FAILED, message
    if "timeout" in joined or "timed out" in joined:
        return ErrorKind.TIMEOUT, message
    if "unreachable" in joined or "no route" in joined:
        return ErrorKind.UNREACHABLE, message
    return ErrorKind.OTHER, message
