"""`p2pdiag dial`: the relay path to a peer, every step recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from p2pdiag.probes import circuit as circ
from p2pdiag.probes import net
from p2pdiag.probes.context import ProbeContext
from p2pdiag.probes.relay import connect_relay, hop_connect, identify
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import DialTarget
from p2pdiag.trace.events import (
    HoldStarted,
    Path,
    PingFailed,
    Subject,
    TargetResolved,
    UpgradeNotAttempted,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc.config import IceConfig, UpgradeTimeouts

PLAIN_CIRCUIT = ("the target is a plain /p2p-circuit/p2p/PEER address, which asks for a relayed connection "
                 "only; dial .../p2p-circuit/webrtc/p2p/PEER or the peer id to attempt the upgrade")
NO_UPGRADE = "--no-upgrade was given"


@dataclass(frozen=True, slots=True)
class DialOptions:
    target: DialTarget
    timeouts: StepTimeouts = field(default_factory=StepTimeouts)
    hold_s: float = 0.0
    ping_interval_s: float = 1.0
    upgrade: bool = True
    ice: IceConfig = field(default_factory=IceConfig)  # no ICE servers, loopback candidates on
    upgrade_timeouts: UpgradeTimeouts = field(default_factory=UpgradeTimeouts)


def upgrading(opts: DialOptions) -> bool:
    return opts.upgrade and opts.target.webrtc


async def dial(opts: DialOptions, rec: Recorder, key_pair: Any = None) -> None:
    if upgrading(opts):
        # aiortc is imported and warmed up before the relay path, not between the secured circuit and
        # the upgrade's start, where it took 270 ms of a 520 ms dial (issue 13)
        from p2pdiag.webrtc.upgrade import prepare

        prepare()
    async with trio.open_nursery() as nursery:
        stun = opts.ice.stun
        if opts.upgrade and len(stun) >= 2:
            # This network's NAT, probed beside the relay path: the upgrade's gathering asks every
            # STUN server too (webrtc/ice.py, bound_gathering), but only the probe tests filtering
            # and reads OTHER-ADDRESS (diagnosis/network.py).
            from p2pdiag.probes.nat import TEST_TIMEOUT_S, record_probe

            # no longer than the upgrade waits for a STUN answer: in the lab (0.5 s) the probe
            # then ends before the upgrade instead of holding the verdict for its filtering tests
            nursery.start_soon(record_probe, list(stun), rec, min(TEST_TIMEOUT_S, opts.upgrade_timeouts.stun))
        await dial_relays(opts, rec, key_pair)


async def dial_relays(opts: DialOptions, rec: Recorder, key_pair: Any = None) -> None:
    target = opts.target
    rec.record(TargetResolved, peer_id=target.peer_id, relays=tuple(r.addr for r in target.relays),
               method=target.method, webrtc_requested=target.webrtc)
    from p2pdiag.identity import own_key_pair
    from p2pdiag.probes.noise import Noise
    from p2pdiag.wire.identify import IDENTIFY_PROTOCOL

    key_pair = key_pair or own_key_pair()
    # p2pdiag's own side: its key and identify answer, no py-libp2p host (whose import alone took
    # 1.3 s of a 3 s dial process, issue 13)
    host = net.LocalPeer(key_pair, (IDENTIFY_PROTOCOL,))
    async with trio.open_nursery() as readers:
        # The relay's connection and the relayed one are p2pdiag's own: TCP or WebSocket, Noise
        # (probes/noise.py) and yamux (probes/yamux.py), as probes/context.py's ProbeContext makes them; each
        # stream's protocol selected in one round trip.
        ctx = ProbeContext(host, opts.timeouts, nursery=readers, noise=Noise(key_pair))
        relay_conns = []
        try:
            for n, relay in enumerate(target.relays, start=1):
                relay_conn = await connect_relay(host, relay, rec, opts.timeouts, dial=ctx.dial)
                if relay_conn is None:
                    continue
                relay_conns.append(relay_conn)
                async with trio.open_nursery() as beside:  # the relay's identify beside HOP CONNECT
                    beside.start_soon(identify, relay_conn, Subject.RELAY, relay.peer_id, f"relay-{n}", rec,
                                      opts.timeouts)
                    got = await hop_connect(relay_conn, relay, target.peer_id, rec, opts.timeouts)
                if got is None:
                    continue
                stream = circ.CircuitStream(got[0], rec)
                cid = f"relayed-{n}"
                conn = await circ.secure(host, stream, inbound=False, relay=relay.addr, relay_peer_id=relay.peer_id,
                                         remote_peer_id=target.peer_id, connection_id=cid, rec=rec,
                                         timeouts=opts.timeouts, upgrade=ctx.upgrader)
                if conn is None:
                    continue
                await use_relayed(conn, stream, cid, target.peer_id, opts, rec, relay_conn, host)
                return
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                for relay_conn in relay_conns:
                    await net.close_quietly(relay_conn)
            readers.cancel_scope.cancel()


async def use_relayed(conn: Any, stream: circ.CircuitStream, cid: str, peer_id: str, opts: DialOptions,
                      rec: Recorder, relay_conn: Any = None, host: Any = None) -> None:
    """Try the upgrade over this one relayed connection, identify and ping over it beside the upgrade,
    hold it, then check that this same relayed connection is still alive, whatever the upgrade did."""
    async with trio.open_nursery() as nursery:
        # records a cut as soon as it happens, while the checks below go on
        nursery.start_soon(circ.record_closed_when_ended, stream, relay_conn, cid, rec)
        pinger = circ.Pinger(conn, cid, Path.RELAYED, rec, opts.timeouts)
        webrtc = None

        async def identify_and_ping() -> None:
            await identify(conn, Subject.PEER, peer_id, cid, rec, opts.timeouts)
            await pinger.ping()

        try:
            if upgrading(opts):
                # The upgrade's signaling starts the moment the circuit is secured, as js-libp2p's dialer
                # does, with the peer's identify and the first relayed ping beside it, each on a stream of
                # its own on this same connection: their results are recorded as before and decide the
                # verdict as before; only their order in the trace changes.
                async with trio.open_nursery() as checks:
                    checks.start_soon(identify_and_ping)
                    webrtc = await try_upgrade(conn, cid, peer_id, opts, rec, host, nursery)
            else:
                await identify_and_ping()
                await try_upgrade(conn, cid, peer_id, opts, rec, host, nursery)
            if opts.hold_s > 0 and not stream.ended.is_set():
                rec.record(HoldStarted, connection_id=cid, hold_s=opts.hold_s, ping_interval_s=opts.ping_interval_s)
                webrtc_pinger = (circ.Pinger(webrtc, webrtc.connection_id, Path.WEBRTC, rec, opts.timeouts)
                                 if webrtc is not None else None)
                with trio.move_on_after(opts.hold_s):
                    while not stream.ended.is_set():
                        result = await pinger.ping()
                        circ.record_traffic(stream, cid, rec)
                        if webrtc_pinger is not None and not webrtc.closed.is_set():
                            await webrtc_pinger.ping()  # the direct connection is held too
                        if isinstance(result, PingFailed) and stream.ended.is_set():
                            break
                        with trio.move_on_after(opts.ping_interval_s):
                            await stream.ended.wait()
            if not stream.ended.is_set():
                # The fallback check: is this same relayed connection still alive after everything?
                await pinger.ping()
            circ.record_traffic(stream, cid, rec)
        finally:
            with trio.CancelScope(shield=True):
                if webrtc is not None:
                    await webrtc.close()
                if not stream.ended.is_set():
                    await circ.close_by_us(conn, stream)
                with trio.move_on_after(1 + circ.RELAY_GONE_SETTLE_S):
                    await circ.record_closed_when_ended(stream, relay_conn, cid, rec)
            nursery.cancel_scope.cancel()


async def try_upgrade(conn: Any, cid: str, peer_id: str, opts: DialOptions, rec: Recorder, host: Any,
                      nursery: trio.Nursery) -> Any:
    """The WebRTC upgrade, run while the relayed connection is kept; a ping over WebRTC if it worked."""
    if not upgrading(opts):
        rec.record(UpgradeNotAttempted, reason=NO_UPGRADE if not opts.upgrade else PLAIN_CIRCUIT)
        return None
    from p2pdiag.webrtc.ping import ping_webrtc
    from p2pdiag.webrtc.upgrade import upgrade_as_initiator

    webrtc = await upgrade_as_initiator(conn, peer_id, "webrtc-1", rec, opts.ice, opts.upgrade_timeouts,
                                        relayed_connection_id=cid, host=host)
    if webrtc is not None:
        nursery.start_soon(webrtc.serve)
        await ping_webrtc(webrtc, rec, opts.timeouts.ping)
    return webrtc
