"""/ipfs/ping/1.0.0 over a WebRTC connection: asking (the probes' Pinger) and answering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from p2pdiag.probes.circuit import Pinger, echo_pings
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.trace.events import Path, PingCompleted, PingFailed, PingServed
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc.connection import WebRTCConnection
from p2pdiag.webrtc.stream import WebRTCStream
from p2pdiag.wire.identify import PING_PROTOCOL


async def ping_webrtc(conn: WebRTCConnection, rec: Recorder, timeout_s: float) -> PingCompleted | PingFailed:
    """One ping on a new data channel of `conn`; recorded with path=webrtc and the connection's id.

    For repeated pings, keep a `probes.circuit.Pinger(conn, conn.connection_id, Path.WEBRTC, ...)`:
    a WebRTCConnection opens streams like a py-libp2p connection.
    """
    return await Pinger(conn, conn.connection_id, Path.WEBRTC, rec, StepTimeouts(ping=timeout_s)).ping()


def ping_handler(conn: WebRTCConnection, rec: Recorder) -> Callable[[WebRTCStream], Awaitable[None]]:
    """Echo pings for the remote, counting them as the relayed listener does (PingServed)."""
    total = 0

    async def handle(stream: WebRTCStream) -> None:
        nonlocal total
        served = await echo_pings(stream)
        if served:
            total += served
            rec.record(PingServed, connection_id=conn.connection_id, count=total)

    return handle


__all__ = ["PING_PROTOCOL", "ping_handler", "ping_webrtc"]
