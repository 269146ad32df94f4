"""The relayed connection: Noise + muxer over a circuit stream that p2pdiag counts and watches.

The circuit stream (the HOP stream on the dialer, the STOP stream on the listener) is wrapped
before py-libp2p upgrades it, so p2pdiag sees every byte the relay forwards, protocol overhead
included, and how the stream ended: reset or EOF from below, or closed from above.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from p2pdiag.probes import net
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitTraffic,
    CircuitUpgradeFailed,
    Closer,
    ErrorKind,
    Path,
    PingCompleted,
    PingFailed,
    StepTimedOut,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.wire import pb
from p2pdiag.wire.identify import PING_PAYLOAD_BYTES, PING_PROTOCOL

READ_AHEAD_BYTES = 65536


class CircuitStream:
    """A ReadWriteCloser over the relay's stream that counts bytes and remembers how it ended."""

    def __init__(self, stream: Any, rec: Recorder) -> None:
        self._stream = stream
        self._rec = rec
        self.opened_t_s = rec.now()
        self.bytes_sent = 0
        self.bytes_received = 0  # read from the relay's stream, whether or not the layer above took it yet
        self._buffer = b""
        self.ended = trio.Event()
        self.end_closer: Closer | None = None
        self.end_reason = ""
        self.end_t_s: float | None = None
        self._closing_by_us = False
        self.closure_recorded = False
        # The end came from below (a read or write on the relay's stream failed or hit EOF), not
        # from py-libp2p closing the raw connection above it, as it does after any failed handshake.
        self.ended_from_below = False

    def age_s(self) -> float:
        return (self.end_t_s if self.end_t_s is not None else self._rec.now()) - self.opened_t_s

    def _end(self, closer: Closer, reason: str) -> None:
        if not self.ended.is_set():
            self.end_closer, self.end_reason, self.end_t_s = closer, reason, self._rec.now()
            self.ended.set()

    def _end_from(self, exc: BaseException) -> None:
        if self._closing_by_us:
            self._end(Closer.LOCAL, "closed by p2pdiag")
            return
        kind, message = net.classify(exc)
        if not self.ended.is_set():
            self.ended_from_below = True
        if kind is ErrorKind.RESET:
            self._end(Closer.RELAY, f"the relay reset the circuit stream ({message})")
        else:
            self._end(Closer.REMOTE, f"the circuit stream ended ({kind.value}: {message})")

    async def read(self, n: int | None = None) -> bytes:
        if not self._buffer:
            try:
                # Read what has arrived, not just what was asked: Noise asks for 2 length bytes, then
                # the body, and py-libp2p's yamux answers every read with a window update frame.
                data = await self._stream.read(max(n or 0, READ_AHEAD_BYTES))
            except BaseException as exc:
                if not isinstance(exc, trio.Cancelled):
                    self._end_from(exc)
                raise
            if not data:
                self._end_from(EOFError("end of stream"))
            self.bytes_received += len(data)
            self._buffer = data
        data, self._buffer = (self._buffer, b"") if n is None else (self._buffer[:n], self._buffer[n:])
        return data

    async def write(self, data: bytes) -> None:
        try:
            await self._stream.write(data)
        except BaseException as exc:
            if not isinstance(exc, trio.Cancelled):
                self._end_from(exc)
            raise
        self.bytes_sent += len(data)

    async def close(self) -> None:
        if self._closing_by_us:
            self._end(Closer.LOCAL, "closed by p2pdiag at the end of the run")
        else:
            # py-libp2p closes the raw connection when the secure session above it ends:
            # the peer sent a GoAway or closed its side.
            self._end(Closer.REMOTE, "the peer ended the secure session")
        await net.close_quietly(self._stream)

    def mark_closing_by_us(self) -> None:
        self._closing_by_us = True

    def get_remote_address(self) -> tuple[str, int] | None:
        try:
            return self._stream.get_remote_address()
        except Exception:  # noqa: BLE001  (a detail for the trace: not every py-libp2p stream can tell)
            return None


async def secure(
    host: Any,
    stream: CircuitStream,
    *,
    inbound: bool,
    relay: str,
    relay_peer_id: str,
    remote_peer_id: str,
    connection_id: str,
    rec: Recorder,
    timeouts: StepTimeouts,
    upgrade: Callable[[Any, str], Awaitable[Any]] | None = None,
) -> Any | None:
    """Noise + muxer over the circuit; returns the swarm connection that owns it (or, outbound with
    `upgrade(raw, peer_id)`, the connection that makes)."""
    began = rec.now()
    own = upgrade is not None and not inbound  # p2pdiag's own Noise and yamux: no py-libp2p
    network = None if own else host.get_network()
    raw = stream if own else net.relayed_raw_connection(stream, not inbound, relay_peer_id, remote_peer_id)
    try:
        with trio.fail_after(timeouts.secure):
            if inbound:
                muxed = await network.upgrade_inbound_raw_conn(raw, raw.get_transport_addresses()[0])
                conn = next(c for c in network.get_connections() if getattr(c, "muxed_conn", None) is muxed)
                remote_peer_id = str(muxed.peer_id)
            elif upgrade is not None:
                conn = await upgrade(raw, remote_peer_id)
            else:
                conn = await network.upgrade_outbound_raw_conn(raw, net.peer_id_from_string(remote_peer_id))
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        kind, message = net.classify(exc)
        if kind is ErrorKind.TIMEOUT:
            rec.record(StepTimedOut, step="secure", timeout_s=timeouts.secure, relay=relay)
        rec.record(CircuitUpgradeFailed, connection_id=connection_id, relay=relay, error_kind=kind,
                   error=message, duration_s=rec.now() - began)
        if stream.ended.is_set() and stream.ended_from_below:
            # The circuit ended under the handshake (a relay with a small data limit cuts here):
            # how far it got, in bytes, is what tells a cut at a limit from a refusing peer. A
            # handshake that failed on its own (Noise, the peer id) also ends the stream, from
            # above (py-libp2p closes the raw connection): that is no circuit.closed.
            record_closed(stream, connection_id, rec)
        await net.close_quietly(stream)
        return None
    security, muxer = net.negotiated(conn)
    rec.record(CircuitSecured, connection_id=connection_id, relay=relay, remote_peer_id=remote_peer_id,
               inbound=inbound, security=security, muxer=muxer, duration_s=rec.now() - began)
    return conn


class Pinger:
    """Pings over one given connection, a new stream each time.

    js-libp2p aborts an inbound ping stream 10 s after it opened, so a long-lived ping stream
    would fail for reasons that have nothing to do with the connection.
    """

    def __init__(self, conn: Any, connection_id: str, path: Path, rec: Recorder, timeouts: StepTimeouts,
                 relay: str | None = None) -> None:
        self._conn = conn
        self._relay = relay
        self._cid = connection_id
        self._path = path
        self._rec = rec
        self._timeouts = timeouts
        self.last: PingCompleted | PingFailed | None = None

    async def ping(self) -> PingCompleted | PingFailed:
        stream = None
        try:
            with trio.fail_after(self._timeouts.ping):
                stream = await net.open_stream(self._conn, PING_PROTOCOL, self._timeouts.ping)
                payload = os.urandom(PING_PAYLOAD_BYTES)
                began = trio.current_time()
                await stream.write(payload)
                echo = await net.read_exactly(stream, PING_PAYLOAD_BYTES)
                rtt = trio.current_time() - began
            if echo != payload:
                raise pb.MalformedMessage("the ping echo did not match what was sent")
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, message = net.classify(exc)
            if kind is ErrorKind.TIMEOUT:
                self._rec.record(StepTimedOut, step="ping", timeout_s=self._timeouts.ping, relay=self._relay)
            if stream is not None:
                await net.reset_quietly(stream)
            self.last = self._rec.record(PingFailed, path=self._path, connection_id=self._cid, error_kind=kind,
                                         error=message)
            return self.last
        await net.close_quietly(stream)
        self.last = self._rec.record(PingCompleted, path=self._path, connection_id=self._cid, rtt_s=rtt)
        return self.last


async def echo_pings(stream: Any) -> int:
    """Answer pings on one stream until the remote ends it; how many were answered."""
    served = 0
    try:
        while True:
            payload = await net.read_exactly(stream, PING_PAYLOAD_BYTES)
            await stream.write(payload)
            served += 1
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        net.classify(exc)  # a bug in p2pdiag goes on up; the remote closing or resetting is the usual end
    finally:
        await net.close_quietly(stream)
    return served


def record_traffic(stream: CircuitStream, connection_id: str, rec: Recorder) -> None:
    rec.record(CircuitTraffic, connection_id=connection_id, bytes_sent=stream.bytes_sent,
               bytes_received=stream.bytes_received, age_s=stream.age_s())


RELAY_GONE_SETTLE_S = 0.3


async def record_closed_when_ended(stream: CircuitStream, relay_conn: Any, connection_id: str,
                                   rec: Recorder) -> None:
    """Wait for the circuit to end, then record who ended it.

    A circuit that ends because the connection to the relay itself went away (the relay
    restarted, the network dropped) must not be blamed on the peer: after the end, give the
    relay connection a moment to show whether it closed too.
    """
    await stream.ended.wait()
    closer, reason = stream.end_closer or Closer.UNKNOWN, stream.end_reason
    if closer is Closer.REMOTE and relay_conn is not None:
        with trio.move_on_after(RELAY_GONE_SETTLE_S):
            await relay_conn.event_closed.wait()
        if relay_conn.is_closed:
            closer, reason = Closer.RELAY, f"the connection to the relay closed ({reason})"
    record_closed(stream, connection_id, rec, closer, reason)


def record_closed(stream: CircuitStream, connection_id: str, rec: Recorder, closer: Closer | None = None,
                  reason: str | None = None) -> None:
    if stream.closure_recorded:
        return
    stream.closure_recorded = True
    rec.record(CircuitClosed, connection_id=connection_id, closer=closer or stream.end_closer or Closer.UNKNOWN,
               reason=reason if reason is not None else stream.end_reason, bytes_sent=stream.bytes_sent,
               bytes_received=stream.bytes_received, age_s=stream.age_s())


async def close_by_us(conn: Any | None, stream: CircuitStream) -> None:
    """Close the connection over the circuit (None: nothing was set up above the stream), then it."""
    stream.mark_closing_by_us()
    if conn is not None:
        await net.close_quietly(conn)
    await net.close_quietly(stream)
