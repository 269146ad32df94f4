"""Tests for p2pdiag.peers.pyrelay: a real py-libp2p Circuit Relay v2 relay.

The client side is done by hand on purpose (independent of the library's
framing helpers): two ordinary py-libp2p hosts open
``/libp2p/circuit/relay/0.2.0/hop`` streams and exchange varint-length-prefixed
``HopMessage``/``StopMessage`` protobufs, so every Limit/Status/Reservation
field the relay puts on the wire can be asserted, and the relayed byte stream
(after the HOP/STOP handshake) can be measured exactly.

No pytest plugin is needed: each test is a plain function running ``trio.run``
under a ``trio.fail_after`` budget.  ``trio.run`` only returns once every task
has finished, so a returning test also proves ``running_relay`` leaks no tasks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.network.stream.exceptions import StreamError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2.pb import circuit_pb2 as pb

from p2pdiag.peers.pyrelay import (
    HOP_PROTOCOL_ID,
    STOP_PROTOCOL_ID,
    RelaySettings,
    RunningRelay,
    running_relay,
)
from p2pdiag.probes.net import read_exactly
from p2pdiag.wire.pb import encode_varint as _uvarint

REPO_ROOT = Path(__file__).resolve().parents[2]

OK = 100
RESOURCE_LIMIT_EXCEEDED = 201
NO_RESERVATION = 204

assert HOP_PROTOCOL_ID == "/libp2p/circuit/relay/0.2.0/hop"
assert STOP_PROTOCOL_ID == "/libp2p/circuit/relay/0.2.0/stop"


# ----------------------------------------------------------------- wire helpers


_read_exact = read_exactly


async def write_msg(stream: INetStream, msg) -> None:
    body = msg.SerializeToString()
    await stream.write(_uvarint(len(body)) + body)


async def read_msg(stream: INetStream, cls):
    """Read one uvarint-length-prefixed protobuf, never over-reading."""
    n = shift = 0
    while True:
        (b,) = await _read_exact(stream, 1)
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    msg = cls()
    msg.ParseFromString(await _read_exact(stream, n))
    return msg


# ----------------------------------------------------------------- peers


@asynccontextmanager
async def client_host() -> AsyncIterator[IHost]:
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    host = new_host(
        key_pair=create_new_key_pair(),
        enable_websocket=True,  # so it can dial the relay's /ws address
        enable_mDNS=False,
        enable_upnp=False,
        bootstrap=None,
    )
    async with host.run(listen_addrs=listen):
        yield host


async def connect(host: IHost, addr: str) -> ID:
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    await host.connect(info)
    return info.peer_id


async def hop(host: IHost, relay_id: ID, msg: pb.HopMessage):
    stream = await host.new_stream(relay_id, [HOP_PROTOCOL_ID])
    await write_msg(stream, msg)
    return stream, await read_msg(stream, pb.HopMessage)


@dataclass
class Circuit:
    reserve_reply: pb.HopMessage
    connect_reply: pb.HopMessage
    stop_connect: pb.StopMessage
    a_id: ID
    b_id: ID
    a_stream: INetStream  # target side (STOP stream)
    b_stream: INetStream  # initiator side (HOP stream)
    t_established: float  # monotonic, when B got HOP STATUS OK


@asynccontextmanager
async def circuit(relay: RunningRelay, b_addr: str | None = None) -> AsyncIterator[Circuit]:
    """A reserves on the relay and accepts STOP; B HOP-CONNECTs to A."""
    tcp_addr = next(a for a in relay.addrs if "/ws" not in a)
    stops: trio.MemoryChannel = trio.open_memory_channel(1)
    stop_send, stop_recv = stops

    async def on_stop(stream: INetStream) -> None:
        msg = await read_msg(stream, pb.StopMessage)
        await write_msg(stream, pb.StopMessage(type=pb.StopMessage.STATUS, status=OK))
        await stop_send.send((msg, stream))

    async with client_host() as a, client_host() as b:
        a.set_stream_handler(STOP_PROTOCOL_ID, on_stop)
        relay_id = await connect(a, tcp_addr)
        _, reserve_reply = await hop(a, relay_id, pb.HopMessage(type=pb.HopMessage.RESERVE))
        assert reserve_reply.status == OK, reserve_reply
        await connect(b, b_addr or tcp_addr)
        b_stream, connect_reply = await hop(
            b,
            relay_id,
            pb.HopMessage(type=pb.HopMessage.CONNECT, peer=pb.PeerId(id=a.get_id().to_bytes())),
        )
        t_established = trio.current_time()
        assert connect_reply.status == OK, connect_reply
        with trio.fail_after(5):
            stop_connect, a_stream = await stop_recv.receive()
        yield Circuit(
            reserve_reply,
            connect_reply,
            stop_connect,
            a.get_id(),
            b.get_id(),
            a_stream,
            b_stream,
            t_established,
        )


async def read_until_dead(stream: INetStream) -> tuple[bytes, str]:
    """Read until EOF/reset; return (bytes, how it ended)."""
    buf = b""
    while True:
        try:
            chunk = await stream.read(65536)
        except StreamError as e:  # StreamReset / StreamEOF
            return buf, type(e).__name__
        if not chunk:
            return buf, "EOF"
        buf += chunk


def parse_inband_status(data: bytes) -> pb.HopMessage | None:
    """The relay writes a length-prefixed HopMessage STATUS into the data stream."""
    if not data:
        return None
    n = shift = i = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    msg = pb.HopMessage()
    msg.ParseFromString(data[i : i + n])
    assert i + n == len(data), f"trailing bytes after in-band status: {data!r}"
    return msg


def run(fn, budget: float) -> None:
    async def wrapper() -> None:
        with trio.fail_after(budget):
            await fn()

    trio.run(wrapper)


# ----------------------------------------------------------------- 1. in-process


def test_reserve_and_connect_announce_limits() -> None:
    settings = RelaySettings(
        ws_port=0,
        duration_s=120,
        data_bytes=1 << 20,
        max_reservations=1,
        reservation_ttl_s=600,
    )

    async def scenario() -> None:
        async with running_relay(settings) as relay:
            # Addresses: real bound ports, TCP first then /ws, all with /p2p/<id>.
            assert len(relay.addrs) == 2, relay.addrs
            tcp_addr, ws_addr = relay.addrs
            for addr, suffix in (
                (tcp_addr, f"/p2p/{relay.peer_id}"),
                (ws_addr, f"/ws/p2p/{relay.peer_id}"),
            ):
                ma = multiaddr.Multiaddr(addr)
                assert ma.value_for_protocol("ip4") == "127.0.0.1"
                assert int(ma.value_for_protocol("tcp")) > 0, addr
                assert addr.endswith(suffix), addr
            assert "/ws" not in tcp_addr
            assert ID.from_base58(relay.peer_id).to_base58() == relay.peer_id

            t0 = time.time()
            # B dials the relay over WebSocket, A over TCP.
            async with circuit(relay, b_addr=ws_addr) as c:
                # RESERVE reply: STATUS OK + Reservation + Limit == settings.
                r = c.reserve_reply
                assert r.type == pb.HopMessage.STATUS
                assert r.status == OK
                assert r.HasField("reservation") and r.HasField("limit")
                assert t0 + 600 - 2 <= r.reservation.expire <= time.time() + 600 + 1, r.reservation.expire - t0
                rsv_addrs = {str(multiaddr.Multiaddr(a)) for a in r.reservation.addrs}
                assert rsv_addrs == set(relay.addrs), rsv_addrs
                assert len(r.reservation.voucher) > 0  # signed envelope
                assert (r.limit.duration, r.limit.data) == (120, 1 << 20)

                # HOP CONNECT reply to B: STATUS OK with the same Limit.
                cr = c.connect_reply
                assert (cr.type, cr.status) == (pb.HopMessage.STATUS, OK)
                assert cr.HasField("limit")
                assert (cr.limit.duration, cr.limit.data) == (120, 1 << 20)

                # A got STOP CONNECT naming B, with the Limit.
                sc = c.stop_connect
                assert sc.type == pb.StopMessage.CONNECT
                assert ID(sc.peer.id) == c.b_id
                assert sc.HasField("limit")
                assert (sc.limit.duration, sc.limit.data) == (120, 1 << 20)

                # Bytes flow both ways through the circuit.
                await c.b_stream.write(b"ping from B")
                assert await _read_exact(c.a_stream, 11) == b"ping from B"
                await c.a_stream.write(b"pong from A")
                assert await _read_exact(c.b_stream, 11) == b"pong from A"

                async with client_host() as x:
                    relay_id = await connect(x, tcp_addr)
                    # CONNECT to a peer without reservation -> NO_RESERVATION.
                    _, rep = await hop(
                        x,
                        relay_id,
                        pb.HopMessage(
                            type=pb.HopMessage.CONNECT,
                            peer=pb.PeerId(id=x.get_id().to_bytes()),
                        ),
                    )
                    assert (rep.type, rep.status) == (
                        pb.HopMessage.STATUS,
                        NO_RESERVATION,
                    )
                    # max_reservations=1 is taken by A -> refused with 201
                    # (RESOURCE_LIMIT_EXCEEDED, not 200 RESERVATION_REFUSED).
                    _, rep = await hop(x, relay_id, pb.HopMessage(type=pb.HopMessage.RESERVE))
                    assert (rep.type, rep.status) == (
                        pb.HopMessage.STATUS,
                        RESOURCE_LIMIT_EXCEEDED,
                    )
                    assert not rep.HasField("reservation")
            # Leaving running_relay with circuits/handler tasks still around
            # must not hang (fail_after) nor leak tasks (trio.run returns).

    run(scenario, 15)


# ----------------------------------------------------------------- 3. limits
#
# How a cut looks from the outside (py-libp2p 0.8.1 relay + yamux):
# * the relay writes a HopMessage STATUS 201 (RESOURCE_LIMIT_EXCEEDED) *into
#   the data stream* of the side whose chunk triggered the cut, then resets
#   both streams;
# * a reader that is blocked in read() when the RST arrives gets StreamEOF
#   (yamux drops the stream's event -> "removed during read"); a read issued
#   after that gets StreamReset; writes get StreamReset.  So "dead" below is
#   either of the two.
# * the in-band STATUS bytes only reach the sender if it is reading at the
#   time; a yamux RST discards not-yet-read buffered data.  The helpers below
#   therefore always read both ends concurrently.

DEAD = {"StreamEOF", "StreamReset"}


async def drain_both(c: Circuit, result: dict) -> None:
    """Read both ends until dead, concurrently; record bytes/how/when."""

    async def one(name: str, stream: INetStream) -> None:
        data, how = await read_until_dead(stream)
        result[f"{name}_got"] = data
        result[f"{name}_end"] = how
        result[f"{name}_dead_at"] = round(trio.current_time() - c.t_established, 3)

    async with trio.open_nursery() as n:
        n.start_soon(one, "a", c.a_stream)
        n.start_soon(one, "b", c.b_stream)


async def write_fails(stream: INetStream) -> str | None:
    try:
        await stream.write(b"after-cut")
    except StreamError as e:
        return type(e).__name__
    return None


def test_duration_limit_cuts_active_circuit() -> None:
    """duration=2 s; B writes an 8-byte tick every 0.3 s towards A."""
    settings = RelaySettings(duration_s=2, data_bytes=1 << 20)
    result: dict = {}
    sent_at: list[float] = []

    async def scenario() -> None:
        async with running_relay(settings) as relay, circuit(relay) as c:
            assert c.connect_reply.limit.duration == 2

            async def b_writer() -> None:
                while True:
                    t = trio.current_time() - c.t_established
                    try:
                        await c.b_stream.write(b"tick%04d" % len(sent_at))
                    except StreamError as e:
                        result["b_write_error"] = type(e).__name__
                        result["b_write_error_at"] = round(t, 3)
                        return
                    sent_at.append(round(t, 3))
                    await trio.sleep(0.3)

            async with trio.open_nursery() as n:
                n.start_soon(b_writer)
                await drain_both(c, result)
                await trio.sleep(0.5)  # let the writer hit the dead stream
                n.cancel_scope.cancel()
            result["a_write_after_cut"] = await write_fails(c.a_stream)

    run(scenario, 12)
    received = len(result["a_got"]) // 8
    result["received_ticks"] = received
    result["sent_at"] = sent_at
    msg = f"observed: {result!r}"
    print(msg)  # shown with pytest -s / -rP
    cut = result["a_dead_at"]
    # No timer: the cut comes with the first tick sent after the 2 s deadline,
    # i.e. between 2.0 s and 2.0 s + one tick interval (+ slack).
    assert 2.0 <= cut <= 2.6, msg
    first_late = next(t for t in sent_at if t >= 2.0)
    assert 0 <= cut - first_late < 0.15, msg
    # Every tick up to and including that first late one was forwarded
    # (the relay checks the deadline before blocking in read, so the chunk
    # that wakes it up is still forwarded; the check on the next loop
    # iteration cuts the circuit).
    assert received == sent_at.index(first_late) + 1, msg
    assert result["a_got"] == b"".join(b"tick%04d" % i for i in range(received)), msg
    assert result["a_end"] in DEAD and result["b_end"] in DEAD, msg
    # B (whose chunk triggered the cut) gets the in-band STATUS 201.
    status = parse_inband_status(result["b_got"])
    assert status is not None, msg
    assert (status.type, status.status) == (
        pb.HopMessage.STATUS,
        RESOURCE_LIMIT_EXCEEDED,
    ), msg
    assert not status.HasField("limit"), msg
    assert abs(result["b_dead_at"] - cut) < 0.15, msg
    # And the stream is really gone for writers on both ends.
    assert result.get("b_write_error") == "StreamReset", msg
    assert result["a_write_after_cut"] == "StreamReset", msg


def test_duration_limit_is_only_checked_when_data_arrives() -> None:
    """An idle circuit outlives the duration limit; the next chunk ends it."""
    settings = RelaySettings(duration_s=1, data_bytes=1 << 20)
    result: dict = {}

    async def scenario() -> None:
        async with (
            running_relay(settings) as relay,
            circuit(relay) as c,
            trio.open_nursery() as n,
        ):
            n.start_soon(drain_both, c, result)
            await trio.sleep(2.0)  # idle for twice the 1 s limit
            result["alive_at"] = round(trio.current_time() - c.t_established, 3)
            result["alive"] = "a_end" not in result and "b_end" not in result
            await c.a_stream.write(b"late")

    run(scenario, 10)
    msg = f"observed: {result!r}"
    print(msg)  # shown with pytest -s / -rP
    assert result["alive"] and result["alive_at"] >= 2.0, msg  # not cut while idle
    # The late chunk is still forwarded, then the circuit is cut at once.
    assert result["b_got"] == b"late", msg
    status = parse_inband_status(result["a_got"])
    assert status is not None and status.status == RESOURCE_LIMIT_EXCEEDED, msg
    assert result["a_end"] in DEAD and result["b_end"] in DEAD, msg
    assert result["a_dead_at"] - result["alive_at"] < 0.3, msg


def test_data_limit_is_one_budget_over_both_directions() -> None:
    settings = RelaySettings(duration_s=60, data_bytes=4096)
    result: dict = {}

    async def scenario() -> None:
        async with running_relay(settings) as relay, circuit(relay) as c:
            assert c.connect_reply.limit.data == 4096
            assert c.stop_connect.limit.data == 4096
            a, b = c.a_stream, c.b_stream
            # Ping-pong so that every write is a separate read at the relay.
            plan = [(b, a, 1000), (a, b, 1000), (b, a, 1000), (a, b, 1000), (b, a, 96)]
            for i, (src, dst, size) in enumerate(plan):
                payload = bytes([65 + i]) * size
                await src.write(payload)
                assert await _read_exact(dst, size) == payload, f"step {i}"
            # 4096 payload bytes relayed (2096 B->A + 2000 A->B; the HOP/STOP
            # handshake is not counted): exactly at the limit and still alive.
            # One more byte, in either direction, ends it:
            async with trio.open_nursery() as n:
                n.start_soon(drain_both, c, result)
                await trio.sleep(0.1)
                result["alive_at_4096"] = "a_end" not in result and "b_end" not in result
                await a.write(b"!")

    run(scenario, 10)
    msg = f"observed: {result!r}"
    print(msg)  # shown with pytest -s / -rP
    assert result["alive_at_4096"], msg
    assert result["b_got"] == b"", msg  # the over-budget byte is dropped
    status = parse_inband_status(result["a_got"])
    assert status is not None and status.status == RESOURCE_LIMIT_EXCEEDED, msg
    assert result["a_end"] in DEAD and result["b_end"] in DEAD, msg


def test_data_limit_drops_whole_chunk_that_crosses_budget() -> None:
    """A chunk larger than the remaining budget is not truncated: it is dropped."""
    settings = RelaySettings(duration_s=60, data_bytes=4096)
    result: dict = {}

    async def scenario() -> None:
        async with running_relay(settings) as relay, circuit(relay) as c:
            await c.b_stream.write(b"x" * 4000)
            assert await _read_exact(c.a_stream, 4000) == b"x" * 4000
            async with trio.open_nursery() as n:
                n.start_soon(drain_both, c, result)
                await trio.sleep(0.05)
                await c.b_stream.write(b"y" * 200)  # 4200 > 4096

    run(scenario, 10)
    msg = f"observed: {result!r}"
    print(msg)  # shown with pytest -s / -rP
    assert result["a_got"] == b"", msg  # none of the 200 bytes, not even 96
    status = parse_inband_status(result["b_got"])
    assert status is not None and status.status == RESOURCE_LIMIT_EXCEEDED, msg
    assert result["a_end"] in DEAD and result["b_end"] in DEAD, msg


def test_relay_shutdown_kills_live_circuit_promptly() -> None:
    """Leaving running_relay while a circuit is in use ends it and returns fast."""
    result: dict = {}

    async def scenario() -> None:
        stop, ready = trio.Event(), trio.Event()
        holder: dict = {}

        async def relay_task() -> None:
            async with running_relay(RelaySettings()) as relay:
                holder["relay"] = relay
                ready.set()
                await stop.wait()
            holder["stopped_at"] = trio.current_time()

        async with trio.open_nursery() as n:
            n.start_soon(relay_task)
            await ready.wait()
            async with circuit(holder["relay"]) as c:
                await c.b_stream.write(b"hi")
                assert await _read_exact(c.a_stream, 2) == b"hi"
                t0 = trio.current_time()
                stop.set()
                await drain_both(c, result)
                result["circuit_dead_after"] = round(trio.current_time() - t0, 3)
        result["relay_exit_after"] = round(holder["stopped_at"] - t0, 3)

    run(scenario, 10)
    msg = f"observed: {result!r}"
    print(msg)  # shown with pytest -s / -rP
    assert result["a_end"] in DEAD and result["b_end"] in DEAD, msg
    assert result["a_got"] == b"" and result["b_got"] == b"", msg
    assert result["relay_exit_after"] < 2.0, msg


@pytest.mark.parametrize("how", ["close", "reset"])
def test_end_of_one_side_is_not_propagated_until_other_side_writes(how: str) -> None:
    """B closes (FIN) or resets its HOP stream; A is only told when A writes.

    The relay's reader only treats *mplex* EOF/reset as end-of-stream; with
    yamux (the default muxer) StreamEOF/StreamReset are "unexpected errors",
    retried 3x with 0.2 s/0.4 s back-off, after which the relay closes its
    copy of B's stream -- but not A's.  The A->B relay direction stays blocked
    in read() until A sends something, which fails to be forwarded and only
    then is A's stream closed.  Half-close is therefore not relayed either.
    """
    result: dict = {}

    async def scenario() -> None:
        async with running_relay(RelaySettings()) as relay, circuit(relay) as c:
            t0 = trio.current_time()

            async def one(name: str, stream: INetStream) -> None:
                data, end = await read_until_dead(stream)
                result[name] = (data, end, round(trio.current_time() - t0, 3))

            async with trio.open_nursery() as n:
                n.start_soon(one, "a", c.a_stream)
                if how == "close":
                    n.start_soon(one, "b", c.b_stream)
                await trio.sleep(0.05)
                t0 = trio.current_time()
                await (c.b_stream.close() if how == "close" else c.b_stream.reset())
                await trio.sleep(1.5)
                result["a_alive_after_1.5s"] = "a" not in result
                await c.a_stream.write(b"reply")
                result["a_wrote_at"] = round(trio.current_time() - t0, 3)
                with trio.move_on_after(2):
                    while "a" not in result:  # noqa: ASYNC110  (the other task's result; bounded above)
                        await trio.sleep(0.01)
                n.cancel_scope.cancel()

    run(scenario, 10)
    msg = f"observed: {result!r}"
    print(msg)  # shown with pytest -s / -rP
    assert result["a_alive_after_1.5s"], msg
    assert "a" in result, msg
    a_data, a_end, a_dead = result["a"]
    assert a_data == b"" and a_end in DEAD, msg
    assert 0 <= a_dead - result["a_wrote_at"] < 0.5, msg
    if how == "close":
        b_data, b_end, b_dead = result["b"]
        # B's half-close turns into a full close after the retry back-off,
        # so the "reply" never reaches B.
        assert b_data == b"" and b_end in DEAD, msg
        assert 0.5 <= b_dead <= 1.2, msg


# ----------------------------------------------------------------- 2. subprocess


def _spawn(*args: str) -> tuple[subprocess.Popen, dict, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pdiag.peers.pyrelay", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(15)
    if not line or not line[0]:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"no ready line; stderr={err.decode(errors='replace')}")
    ready = json.loads(line[0])
    return proc, ready, time.monotonic() - t0


def _check_relay_reachable(ready: dict, duration: int, data: int) -> None:
    tcp_addr = next(a for a in ready["addrs"] if "/ws" not in a)

    async def scenario() -> None:
        async with client_host() as h:
            relay_id = await connect(h, tcp_addr)
            assert relay_id.to_base58() == ready["peer_id"]
            _, rep = await hop(h, relay_id, pb.HopMessage(type=pb.HopMessage.RESERVE))
            assert (rep.type, rep.status) == (pb.HopMessage.STATUS, OK)
            assert (rep.limit.duration, rep.limit.data) == (duration, data)

    run(scenario, 10)


def test_subprocess_ready_line_and_stdin_eof_exit() -> None:
    proc, ready, startup = _spawn("--duration-s", "2", "--data-bytes", "4096", "--ws-port", "0")
    try:
        assert ready["event"] == "ready"
        assert set(ready) == {"event", "peer_id", "addrs"}
        assert len(ready["addrs"]) == 2, ready
        tcp_addr, ws_addr = ready["addrs"]
        assert tcp_addr.startswith("/ip4/127.0.0.1/tcp/") and "/ws" not in tcp_addr
        assert tcp_addr.endswith("/p2p/" + ready["peer_id"])
        assert ws_addr.endswith("/ws/p2p/" + ready["peer_id"])
        _check_relay_reachable(ready, 2, 4096)
        assert proc.poll() is None, "relay died early"

        t0 = time.monotonic()
        proc.stdin.close()
        rc = proc.wait(timeout=5)
        took = time.monotonic() - t0
        assert rc == 0, (rc, proc.stderr.read())
        assert took < 5, took
        assert proc.stdout.read() == b""  # exactly one line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"subprocess startup {startup:.2f}s, stdin-EOF exit {took:.2f}s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_subprocess_signal_exit(signum: int) -> None:
    # stdin stays open (a pipe), so the stdin watcher thread is blocked in
    # read() while the process shuts down -- it must still exit cleanly.
    proc, ready, _ = _spawn()
    try:
        _check_relay_reachable(ready, 3600, 1 << 30)
        t0 = time.monotonic()
        proc.send_signal(signum)
        rc = proc.wait(timeout=5)
        assert rc == 0, (rc, proc.stderr.read())
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
