"""Talking to a relay: connect, identify, HOP CONNECT and RESERVE, each recorded."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from p2pdiag.probes import net
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import RelayAddr
from p2pdiag.trace.events import (
    ErrorKind,
    HopConnectSent,
    HopFailed,
    HopStatusReceived,
    IdentifyCompleted,
    IdentifyFailed,
    RelayConnected,
    RelayDialFailed,
    RelayDialStarted,
    ReservationAccepted,
    ReservationFailed,
    StepTimedOut,
    Subject,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.wire import circuit, pb
from p2pdiag.wire.identify import IDENTIFY_PROTOCOL, MAX_IDENTIFY_BYTES, Identify


async def connect_relay(host: Any, relay: RelayAddr, rec: Recorder, timeouts: StepTimeouts,
                        dial: Callable[[str, str], Awaitable[Any]] | None = None) -> Any | None:
    """A new connection to the relay (the swarm's, or `dial(addr, peer_id)`'s), recorded; None when it failed."""
    rec.record(RelayDialStarted, relay=relay.addr, relay_peer_id=relay.peer_id, transport=relay.transport)
    began = rec.now()
    try:
        with trio.fail_after(timeouts.relay_connect):
            conn = await (dial or functools.partial(net.dial, host))(relay.addr, relay.peer_id)
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        kind, message = net.classify(exc)
        if kind is ErrorKind.TIMEOUT:
            rec.record(StepTimedOut, step="relay-connect", timeout_s=timeouts.relay_connect, relay=relay.addr)
        rec.record(RelayDialFailed, relay=relay.addr, error_kind=kind, error=message, duration_s=rec.now() - began)
        return None
    security, muxer = net.negotiated(conn)
    rec.record(RelayConnected, relay=relay.addr, security=security, muxer=muxer, duration_s=rec.now() - began)
    return conn


async def identify(
    conn: Any, subject: Subject, peer_id: str, connection_id: str, rec: Recorder, timeouts: StepTimeouts,
    relay: str | None = None,
) -> IdentifyCompleted | None:
    began = rec.now()
    try:
        with trio.fail_after(timeouts.identify):
            stream = await net.open_stream(conn, IDENTIFY_PROTOCOL, timeouts.identify)
            try:
                raw = await net.read_delimited(stream, MAX_IDENTIFY_BYTES)
            finally:
                await net.close_quietly(stream)
        msg = Identify.decode(raw)
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        kind, message = net.classify(exc)
        if kind is ErrorKind.TIMEOUT:
            rec.record(StepTimedOut, step="identify", timeout_s=timeouts.identify, relay=relay)
        rec.record(IdentifyFailed, subject=subject, peer_id=peer_id, connection_id=connection_id,
                   error_kind=kind, error=message, duration_s=rec.now() - began)
        return None
    return rec.record(
        IdentifyCompleted,
        subject=subject,
        peer_id=peer_id,
        connection_id=connection_id,
        agent_version=msg.agent_version,
        protocol_version=msg.protocol_version,
        protocols=msg.protocols,
        observed_addr=net.multiaddr_to_string(msg.observed_addr),
        listen_addrs=tuple(a for a in (net.multiaddr_to_string(x) for x in msg.listen_addrs) if a),
        duration_s=rec.now() - began,
    )


async def hop_connect(
    conn: Any, relay: RelayAddr, target_peer_id: str, rec: Recorder, timeouts: StepTimeouts
) -> tuple[Any, HopStatusReceived] | None:
    """HOP CONNECT; on STATUS OK returns the stream that now carries the circuit."""
    began = rec.now()
    stage = "negotiate"
    stream = None
    try:
        with trio.fail_after(timeouts.hop):
            stream = await net.open_stream(conn, circuit.HOP_PROTOCOL, timeouts.hop)
            stage = "write"
            request = circuit.HopMessage(
                type=circuit.HopType.CONNECT,
                peer=circuit.Peer(id=net.peer_id_bytes(target_peer_id)),
            )
            await net.write_delimited(stream, request.encode())
            rec.record(HopConnectSent, relay=relay.addr, target_peer_id=target_peer_id)
            stage = "read"
            raw = await net.read_delimited(stream, circuit.MAX_MESSAGE_BYTES)
            stage = "decode"
            reply = circuit.HopMessage.decode(raw)
            if reply.type != circuit.HopType.STATUS:
                raise pb.MalformedMessage(f"expected a STATUS reply, got HopMessage type {reply.type}")
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        kind, message = net.classify(exc)
        if kind is ErrorKind.TIMEOUT:
            rec.record(StepTimedOut, step="hop", timeout_s=timeouts.hop, relay=relay.addr)
        rec.record(HopFailed, relay=relay.addr, stage=stage, error_kind=kind, error=message,
                   duration_s=rec.now() - began)
        if stream is not None:
            await net.reset_quietly(stream)
        return None
    status = rec.record(
        HopStatusReceived,
        relay=relay.addr,
        status_code=reply.status,
        status_name=circuit.status_name(reply.status),
        announced_duration_s=reply.limit.duration if reply.limit else None,
        announced_data_bytes=reply.limit.data if reply.limit else None,
        duration_s=rec.now() - began,
    )
    if reply.status != circuit.Status.OK:
        await net.close_quietly(stream)
        return None
    return stream, status


async def reserve(
    conn: Any, relay: RelayAddr, rec: Recorder, timeouts: StepTimeouts, *, refresh: bool = False
) -> ReservationAccepted | None:
    """RESERVE on a fresh HOP stream (some relays close the HOP stream after one exchange)."""
    began = rec.now()
    stream = None
    try:
        with trio.fail_after(timeouts.reserve):
            stream = await net.open_stream(conn, circuit.HOP_PROTOCOL, timeouts.reserve)
            await net.write_delimited(stream, circuit.HopMessage(type=circuit.HopType.RESERVE).encode())
            raw = await net.read_delimited(stream, circuit.MAX_MESSAGE_BYTES)
            reply = circuit.HopMessage.decode(raw)
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        kind, message = net.classify(exc)
        if kind is ErrorKind.TIMEOUT:
            rec.record(StepTimedOut, step="reserve", timeout_s=timeouts.reserve, relay=relay.addr)
        rec.record(ReservationFailed, relay=relay.addr, status_code=None, status_name="NO_ANSWER",
                   error_kind=kind, error=message, refresh=refresh, duration_s=rec.now() - began)
        return None
    finally:
        if stream is not None:
            await net.close_quietly(stream)
    if reply.type != circuit.HopType.STATUS or reply.status != circuit.Status.OK or reply.reservation is None:
        why = (f"STATUS {circuit.status_name(reply.status)}" if reply.type == circuit.HopType.STATUS
               else f"unexpected HopMessage type {reply.type}")
        if reply.status == circuit.Status.OK and reply.reservation is None:
            why = "STATUS OK without a Reservation"
        rec.record(ReservationFailed, relay=relay.addr, status_code=reply.status,
                   status_name=circuit.status_name(reply.status), error_kind=None, error=why,
                   refresh=refresh, duration_s=rec.now() - began)
        return None
    rsvp = reply.reservation
    return rec.record(
        ReservationAccepted,
        relay=relay.addr,
        expire_unix_s=rsvp.expire,
        addrs=tuple(a for a in (net.multiaddr_to_string(x) for x in rsvp.addrs) if a),
        voucher_bytes=len(rsvp.voucher or b""),
        voucher_hex=(rsvp.voucher or b"").hex(),
        announced_duration_s=reply.limit.duration if reply.limit else None,
        announced_data_bytes=reply.limit.data if reply.limit else None,
        refresh=refresh,
        duration_s=rec.now() - began,
    )
