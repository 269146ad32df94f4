"""`p2pdiag listen`: reserve on relays, accept relayed connections, trace each one."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from p2pdiag.probes import circuit as circ
from p2pdiag.probes import net
from p2pdiag.probes.relay import connect_relay, identify, reserve
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import RelayAddr
from p2pdiag.trace.events import (
    CircuitUpgradeFailed,
    Path,
    PingServed,
    StopConnectReceived,
    Subject,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc.config import IceConfig, UpgradeTimeouts
from p2pdiag.webrtc.signaling import PROTOCOL as SIGNALING_PROTOCOL
from p2pdiag.wire import circuit, pb
from p2pdiag.wire.identify import PING_PROTOCOL

CID_WAIT_S = 1.0

REFRESH_FRACTION = 0.5  # refresh when half the reservation's lifetime is gone
MIN_REFRESH_S = 5.0


@dataclass(frozen=True, slots=True)
class ListenOptions:
    relays: tuple[RelayAddr, ...]
    timeouts: StepTimeouts = field(default_factory=StepTimeouts)
    on_ready: Callable[[str, list[str]], None] = lambda peer_id, addrs: None
    on_inbound_ended: Callable[[str], None] = lambda connection_id: None
    upgrade: bool = True  # answer WebRTC upgrades on the relayed connections
    ice: IceConfig = field(default_factory=IceConfig)
    upgrade_timeouts: UpgradeTimeouts = field(default_factory=UpgradeTimeouts)


def dialable_addrs(relay: RelayAddr, peer_id: str) -> list[str]:
    return [f"{relay.addr}/p2p-circuit/p2p/{peer_id}", f"{relay.addr}/p2p-circuit/webrtc/p2p/{peer_id}"]


def refresh_delay_s(expire_unix_s: int, now_unix_s: float) -> float:
    """How long to wait before refreshing a reservation that expires at `expire_unix_s`."""
    return max(MIN_REFRESH_S, (expire_unix_s - now_unix_s) * REFRESH_FRACTION)


async def keep_refreshed(
    expire_unix_s: int | None,
    refresh: Callable[[], Awaitable[int | None]],
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Refresh a reservation before it expires, for as long as the relay keeps granting it."""
    while expire_unix_s:
        await trio.sleep(refresh_delay_s(expire_unix_s, wall_clock()))
        expire_unix_s = await refresh()


class Listener:
    def __init__(self, opts: ListenOptions, rec: Recorder, key_pair: Any = None) -> None:
        self.opts = opts
        self.rec = rec
        self._announced: list[str] = []  # relayed addresses, for identify
        self.host = net.make_host(key_pair, announce=lambda: list(self._announced))
        self.peer_id = self.host.get_id().to_base58()
        self._numbers = itertools.count(1)
        self._cids: dict[int, str] = {}  # id(muxed conn) -> connection id
        self._pings: dict[str, int] = {}
        self._relay_by_id = {r.peer_id: r for r in opts.relays}
        self._upgrades = 0
        self._nursery: trio.Nursery
        self._bug: BaseException | None = None

    def _handler(self, handle: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """A stream handler whose bugs end the run: py-libp2p runs handlers in its own tasks, where
        an exception would only end that stream. Network failures never get here (they are recorded)."""

        async def run(stream: Any) -> None:
            try:
                await handle(stream)
            except Exception as exc:  # noqa: BLE001  (the boundary: keeps the bug and ends the run with it)
                if self._bug is None:
                    self._bug = exc
                self._nursery.cancel_scope.cancel()

        return run

    async def run(self) -> None:
        self.host.set_stream_handler(circuit.STOP_PROTOCOL, self._handler(self._on_stop))
        self.host.set_stream_handler(PING_PROTOCOL, self._handler(self._on_ping))
        if self.opts.upgrade:
            self.host.set_stream_handler(SIGNALING_PROTOCOL, self._handler(self._on_signaling))
        try:
            await self._serve()
        finally:
            if self._bug is not None:
                raise self._bug

    async def _serve(self) -> None:
        async with net.running(self.host), trio.open_nursery() as nursery:
            self._nursery = nursery
            addrs: list[str] = []
            for n, relay in enumerate(self.opts.relays, start=1):
                conn = await connect_relay(self.host, relay, self.rec, self.opts.timeouts)
                if conn is None:
                    continue
                await identify(conn, Subject.RELAY, relay.peer_id, f"relay-{n}", self.rec, self.opts.timeouts)
                rsvp = await reserve(conn, relay, self.rec, self.opts.timeouts)
                if rsvp is None:
                    continue
                addrs += dialable_addrs(relay, self.peer_id)
                self._announced.append(f"{relay.addr}/p2p-circuit")
                if self.opts.upgrade:
                    self._announced.append(f"{relay.addr}/p2p-circuit/webrtc")
                nursery.start_soon(self._refresh, conn, relay, rsvp.expire_unix_s)
            self.opts.on_ready(self.peer_id, addrs)
            if not addrs:
                return
            await trio.sleep_forever()

    async def _refresh(self, conn: Any, relay: RelayAddr, expire_unix_s: int | None) -> None:
        async def again() -> int | None:
            rsvp = await reserve(conn, relay, self.rec, self.opts.timeouts, refresh=True)
            return rsvp.expire_unix_s if rsvp is not None else None

        await keep_refreshed(expire_unix_s, again)

    async def _on_signaling(self, stream: Any) -> None:
        """Answer a WebRTC upgrade on one of our relayed connections, then serve it until it ends."""
        from p2pdiag.webrtc.upgrade import handle_signaling_stream

        muxed = id(getattr(stream, "muxed_conn", None))
        with trio.move_on_after(CID_WAIT_S):  # a fast dialer may signal before secure() returned here
            while muxed not in self._cids:  # noqa: ASYNC110  (secure() fills it in another task; bounded above)
                await trio.sleep(0.01)
        relayed = self._cids.get(muxed, "unknown")
        self._upgrades += 1
        conn = await handle_signaling_stream(
            stream, relayed, self.rec, self.opts.ice, self.opts.upgrade_timeouts,
            connection_id=f"webrtc-inbound-{self._upgrades}", host=self.host)
        if conn is not None:
            self._nursery.start_soon(self._serve_webrtc, conn)

    async def _serve_webrtc(self, conn: Any) -> None:
        try:
            await conn.serve()
        finally:
            with trio.CancelScope(shield=True):
                await conn.close()

    async def _on_ping(self, stream: Any) -> None:
        cid = self._cids.get(id(getattr(stream, "muxed_conn", None)), "direct")
        served = await circ.echo_pings(stream)
        if served:
            self._pings[cid] = self._pings.get(cid, 0) + served
            self.rec.record(PingServed, connection_id=cid, count=self._pings[cid])

    async def _on_stop(self, stream: Any) -> None:
        cid = f"inbound-{next(self._numbers)}"
        relay_peer_id = str(getattr(stream.muxed_conn, "peer_id", "?"))
        relay = self._relay_by_id.get(relay_peer_id)
        relay_name = relay.addr if relay else relay_peer_id
        began = self.rec.now()
        try:
            with trio.fail_after(self.opts.timeouts.stop):
                msg = circuit.StopMessage.decode(await net.read_delimited(stream, circuit.MAX_MESSAGE_BYTES))
                if msg.type != circuit.StopType.CONNECT or msg.peer is None:
                    await net.write_delimited(stream, circuit.StopMessage(
                        type=circuit.StopType.STATUS, status=circuit.Status.UNEXPECTED_MESSAGE).encode())
                    raise pb.MalformedMessage(f"expected STOP CONNECT with a peer, got type {msg.type}")
                source = net.peer_id_from_bytes(msg.peer.id)
                self.rec.record(StopConnectReceived, relay_peer_id=relay_peer_id, source_peer_id=source,
                                connection_id=cid,
                                announced_duration_s=msg.limit.duration if msg.limit else None,
                                announced_data_bytes=msg.limit.data if msg.limit else None)
                await net.write_delimited(stream, circuit.StopMessage(
                    type=circuit.StopType.STATUS, status=circuit.Status.OK).encode())
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, message = net.classify(exc)
            self.rec.record(CircuitUpgradeFailed, connection_id=cid, relay=relay_name,
                            error_kind=kind,
                            error=f"STOP exchange: {message}", duration_s=self.rec.now() - began)
            await net.reset_quietly(stream)
            return
        cstream = circ.CircuitStream(stream, self.rec)
        conn = await circ.secure(self.host, cstream, inbound=True, relay=relay_name, relay_peer_id=relay_peer_id,
                                 remote_peer_id=source, connection_id=cid, rec=self.rec,
                                 timeouts=self.opts.timeouts)
        if conn is None:
            self.opts.on_inbound_ended(cid)
            return
        self._cids[id(conn.muxed_conn)] = cid
        pinger = circ.Pinger(conn, cid, Path.RELAYED, self.rec, self.opts.timeouts)
        relay_conns = self.host.get_network().get_connections(net.peer_id_from_string(relay_peer_id))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(circ.record_closed_when_ended, cstream, relay_conns[0] if relay_conns else None,
                               cid, self.rec)
            try:
                await identify(conn, Subject.PEER, source, cid, self.rec, self.opts.timeouts)
                await pinger.ping()
                await cstream.ended.wait()
            finally:
                with trio.CancelScope(shield=True):
                    if not cstream.ended.is_set():
                        await circ.close_by_us(conn, cstream)
                    with trio.move_on_after(1 + circ.RELAY_GONE_SETTLE_S):
                        await circ.record_closed_when_ended(cstream, relay_conns[0] if relay_conns else None,
                                                            cid, self.rec)
        self.opts.on_inbound_ended(cid)
