"""Hostile "relays" for the tests of issue 10: each one breaks a reader p2pdiag depends on.

Unlike badrelay.py (a real relay with one fault in its HOP answers), most of these are not libp2p
at all: a TCP server that answers the first bytes of a connection with something no reader should
swallow whole. The peer id they print is a made-up Ed25519 id (p2pdiag never gets far enough to
check it). `stream-huge-length` and `stream-flood` are a real py-libp2p host whose answers on every
stream are a 64 MiB message or data without end, so the caps are exercised on yamux streams too::

    python -m p2pdiag.peers.hostile --mode random

prints one JSON line, {"event": "ready", "peer_id": ..., "addrs": [...], "mode": ...}, and runs
until SIGTERM/SIGINT or stdin EOF, as pyrelay does.
"""

from __future__ import annotations

import argparse
import enum
import functools
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

from p2pdiag.wire import envelope, pb
from p2pdiag.wire.identify import IDENTIFY_PROTOCOL

MIB = 1 << 20
HUGE_MESSAGE_BYTES = 64 * MIB


class Mode(enum.Enum):
    SLOWLORIS = "slowloris"  # a valid multistream header, one byte a second, forever
    RANDOM = "random"  # random bytes, as fast as they are read
    HUGE_LENGTH = "huge-length"  # a multistream message announced as 64 MiB, and 64 MiB sent
    HUGE_VARINT = "huge-varint"  # a length prefix that never ends (0xff bytes)
    WS_200 = "ws-200"  # a WebSocket upgrade answered "200 OK" with a page
    WS_ENDLESS_HEADERS = "ws-endless-headers"  # "101 Switching Protocols" and header lines forever
    WS_FLOOD = "ws-flood"  # 100 MB of bytes in answer to the upgrade request
    STREAM_HUGE_LENGTH = "stream-huge-length"  # py-libp2p; every stream's multistream answer is 64 MiB
    STREAM_FLOOD = "stream-flood"  # py-libp2p relay; identify is answered, then flooded forever
    STREAM_WINDOW_FLOOD = "stream-window-flood"  # the same, in yamux DATA frames that ignore the window


WS_MODES = (Mode.WS_200, Mode.WS_ENDLESS_HEADERS, Mode.WS_FLOOD)


def fake_peer_id() -> str:
    """A well-formed Ed25519 peer id (identity multihash of a random key): 12D3KooW…."""
    key = pb.field_varint(1, 1) + pb.field_bytes(2, os.urandom(32))
    return envelope.b58encode(bytes([0x00, len(key)]) + key)


async def _send_forever(stream: trio.SocketStream, chunk: bytes, total: int | None = None) -> None:
    sent = 0
    while total is None or sent < total:
        part = chunk if total is None else chunk[: total - sent]
        await stream.send_all(part)
        sent += len(part)


async def _read_request_head(stream: trio.SocketStream) -> None:
    """Read until the end of the HTTP request head (or 16 KiB): the client waits for our answer."""
    seen = b""
    while b"\r\n\r\n" not in seen and len(seen) < 16384:
        data = await stream.receive_some(4096)
        if not data:
            return
        seen += data


async def _serve_one(mode: Mode, stream: trio.SocketStream) -> None:
    try:
        if mode is Mode.SLOWLORIS:
            header = b"\x13/multistream/1.0.0\n"
            while True:
                for b in header:
                    await stream.send_all(bytes([b]))
                    await trio.sleep(1)
        elif mode is Mode.RANDOM:
            while True:
                await stream.send_all(os.urandom(65536))
        elif mode is Mode.HUGE_LENGTH:
            await stream.send_all(pb.encode_varint(HUGE_MESSAGE_BYTES))
            await _send_forever(stream, b"a" * 65536, HUGE_MESSAGE_BYTES)
            await trio.sleep_forever()
        elif mode is Mode.HUGE_VARINT:
            await _send_forever(stream, b"\xff" * 4096)
        elif mode is Mode.WS_200:
            await _read_request_head(stream)
            body = b"<html>not a websocket</html>"
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                                  + str(len(body)).encode() + b"\r\n\r\n" + body)
            await trio.sleep_forever()
        elif mode is Mode.WS_ENDLESS_HEADERS:
            await _read_request_head(stream)
            await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
            n = 0
            while True:
                await stream.send_all(b"".join(b"X-Hostile-%d: %s\r\n" % (n + i, b"h" * 64) for i in range(64)))
                n += 64
        elif mode is Mode.WS_FLOOD:
            await _read_request_head(stream)
            await _send_forever(stream, os.urandom(65536), 100 * 1000 * 1000)
            await trio.sleep_forever()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # p2pdiag gave up: the expected end
    finally:
        with trio.move_on_after(1):
            await stream.aclose()


async def _raw_server(mode: Mode, host: str) -> tuple[list[trio.SocketListener], list[str]]:
    listeners = await trio.open_tcp_listeners(0, host=host)
    port = listeners[0].socket.getsockname()[1]
    peer_id = fake_peer_id()
    suffix = "/ws" if mode in WS_MODES else ""
    return listeners, [f"/ip4/{host}/tcp/{port}{suffix}/p2p/{peer_id}"]


async def _wait_stdin_eof() -> None:
    def drain() -> None:
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except (OSError, ValueError):
            return

    await trio.to_thread.run_sync(drain, abandon_on_cancel=True)


async def _until_stopped(nursery: trio.Nursery, watch_stdin: bool) -> None:
    async def on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()

    async def on_stdin_eof() -> None:
        await _wait_stdin_eof()
        nursery.cancel_scope.cancel()

    nursery.start_soon(on_signal)
    if watch_stdin:
        nursery.start_soon(on_stdin_eof)


def _ready(peer_id: str, addrs: list[str], mode: Mode) -> None:
    sys.stdout.write(json.dumps({"event": "ready", "peer_id": peer_id, "addrs": addrs, "mode": mode.value}) + "\n")
    sys.stdout.flush()


async def _run_raw(mode: Mode, host: str, watch_stdin: bool) -> None:
    listeners, addrs = await _raw_server(mode, host)
    async with trio.open_nursery() as nursery:
        await _until_stopped(nursery, watch_stdin)
        nursery.start_soon(functools.partial(trio.serve_listeners, functools.partial(_serve_one, mode), listeners))
        _ready(addrs[0].rsplit("/", 1)[1], addrs, mode)


class _HostileAnswers:
    """In place of a py-libp2p host's multiselect. huge-length: every stream's negotiation is answered
    with the multistream header and then a message announced as 64 MiB, all of it sent. flood: the
    relay's own protocols work, but identify is answered with a short message (a reader is satisfied)
    and then data without end, whether or not anyone reads it."""

    def __init__(self, inner: Any, mode: Mode) -> None:
        self._inner = inner
        self._mode = mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def negotiate(self, communicator: Any, negotiate_timeout: int = 0) -> Any:
        stream = communicator.read_writer
        await stream.write(pb.length_prefixed(b"/multistream/1.0.0\n"))
        if self._mode is Mode.STREAM_HUGE_LENGTH:
            await stream.write(pb.encode_varint(HUGE_MESSAGE_BYTES))
            await _write_all(stream, HUGE_MESSAGE_BYTES)
        else:
            await communicator.read()  # the dialer's header
            protocol = await communicator.read()
            await stream.write(pb.length_prefixed(protocol.encode() + b"\n"))
            if protocol != IDENTIFY_PROTOCOL and protocol in self._inner.handlers:
                return protocol, self._inner.handlers[protocol]  # the relay works; identify is the trap
            await stream.write(pb.length_prefixed(pb.field_bytes(6, "hostile/flood")))
            if self._mode is Mode.STREAM_WINDOW_FLOOD:
                await _write_past_the_window(stream)
            await _write_all(stream, None)
        await trio.sleep_forever()


async def _write_past_the_window(stream: Any) -> None:
    """DATA frames of 1 MiB on this stream, written below the yamux stream so that the receiver's
    window is ignored, as a peer that does not implement flow control would."""
    import struct

    from libp2p.stream_muxer.yamux.yamux import TYPE_DATA, YAMUX_HEADER_FORMAT

    muxed = stream.muxed_stream
    frame = struct.pack(YAMUX_HEADER_FORMAT, 0, TYPE_DATA, 0, muxed.stream_id, MIB) + b"w" * MIB
    while True:
        await muxed.conn._write_frame(frame)


async def _write_all(stream: Any, total: int | None) -> None:
    chunk = b"a" * (1 << 16)
    sent = 0
    while total is None or sent < total:
        await stream.write(chunk)
        sent += len(chunk)


async def _run_libp2p(mode: Mode, host: str, watch_stdin: bool) -> None:
    from p2pdiag.peers.pyrelay import RelaySettings, running_relay

    async with running_relay(RelaySettings(host=host)) as relay:
        relay.host.multiselect = _HostileAnswers(relay.host.multiselect, mode)
        async with trio.open_nursery() as nursery:
            await _until_stopped(nursery, watch_stdin)
            _ready(relay.peer_id, relay.addrs, mode)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m p2pdiag.peers.hostile", description=__doc__.split("\n")[0])
    p.add_argument("--mode", required=True, choices=[m.value for m in Mode])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ignore-stdin", action="store_true", help="do not exit on stdin EOF")
    args = p.parse_args(argv)
    mode = Mode(args.mode)
    run = _run_libp2p if mode.value.startswith("stream-") else _run_raw
    trio.run(run, mode, args.host, not args.ignore_stdin)


if __name__ == "__main__":
    main()
