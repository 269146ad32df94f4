"""The connections a probe makes, and what the probes of one process share to make them: one
identity, the step timeouts, a wall clock, and, with a nursery, p2pdiag's own TCP/WebSocket, Noise
and yamux connections (no py-libp2p). `p2pdiag dial` runs on `ProbeContext` directly; `p2pdiag
watch`'s probes (watch/probes.py) on `watch.probes.probe_context` (with a py-libp2p host, for the
reservation holders and GossipSub) or `own_probe_context` (none).
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from p2pdiag.identity import own_key_pair
from p2pdiag.probes import net, yamux
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.wire.identify import IDENTIFY_PROTOCOL

if TYPE_CHECKING:
    from p2pdiag.targets import RelayAddr


@dataclass
class ProbeContext:
    """What the probes of one process (a watch run, a dial) share: one host (one identity for the whole run),
    the step timeouts, a wall clock, and how to run p2pdiag itself (the upgrade probe).

    With `nursery` (probe_context gives one) the probes' connections are p2pdiag's own: its TCP and
    WebSocket dials (`net.dial_in_steps`), Noise (probes/noise.py) and yamux (probes/yamux.py: a
    fifth of the swarm's CPU), their readers running there, no py-libp2p on the way; without it,
    the swarm's connections."""

    host: Any
    timeouts: StepTimeouts = field(default_factory=StepTimeouts)
    wall_clock: Callable[[], float] = time.time
    p2pdiag_argv: tuple[str, ...] = (sys.executable, "-m", "p2pdiag")
    nursery: trio.Nursery | None = None
    noise: Any = None  # probes/noise.py's Noise, with the run's key
    links: dict[str, Any] = field(default_factory=dict)  # relay address -> the connection paths share

    def shared_link(self, relay: RelayAddr) -> Any | None:
        """The connection to RELAY that relayed paths open their HOP streams on, when one is alive
        with room for another stream: a relayed path then costs one handshake (the peer's, over the
        circuit), not two. The relay itself is dialed afresh by each relay probe."""
        conn = self.links.get(relay.addr)
        if conn is None or conn.is_closed or conn.open_streams >= yamux.MAX_STREAMS // 2:
            return None
        return conn

    def keep_link(self, relay: RelayAddr, conn: Any) -> bool:
        """Keep CONN (just dialed) as RELAY's shared link, when there is none alive; True if kept."""
        if self.nursery is None or not isinstance(conn, yamux.YamuxConnection):
            return False
        current = self.links.get(relay.addr)
        if current is not None and not current.is_closed:
            return False
        self.links[relay.addr] = conn
        return True

    def drop_link(self, relay: RelayAddr, conn: Any) -> None:
        if self.links.get(relay.addr) is conn:
            del self.links[relay.addr]
            self.nursery.start_soon(net.close_quietly, conn)

    async def upgrade(self, raw: Any, peer_id: str) -> Any:
        """/noise selected (one round trip), p2pdiag's own Noise (probes/noise.py, which checks the
        peer's key against PEER_ID), then p2pdiag's yamux over it."""
        raw = yamux.ReadAhead(raw)
        try:
            await yamux.select(raw, yamux.NOISE_PROTOCOL)
        except Exception as exc:
            if not net.is_network_failure(exc):
                raise
            raise net.SecurityUpgradeFailure("failed to negotiate the secure protocol") from exc
        secured = await self.noise.secure_outbound(raw, peer_id)
        try:
            return await yamux.upgrade(secured, self.nursery, {IDENTIFY_PROTOCOL: self.answer_identify})
        except BaseException:
            with trio.CancelScope(shield=True):
                await net.close_quietly(secured)
            raise

    @property
    def upgrader(self) -> Callable[[Any, str], Awaitable[Any]] | None:
        return self.upgrade if self.nursery is not None else None

    async def dial(self, addr: str, peer_id: str, reached: Callable[[], None] = lambda: None) -> Any:
        """A new connection to ADDR, whose peer must be PEER_ID: with a nursery, p2pdiag's own TCP or
        WebSocket, Noise and yamux (no py-libp2p); without, the swarm's."""
        return await net.dial_in_steps(self.host, addr, peer_id, reached, upgrade=self.upgrader,
                                       nursery=self.nursery)

    async def answer_identify(self, stream: Any) -> None:
        await serve_identify(self.host, stream)


@asynccontextmanager
async def own_probe_context(timeouts: StepTimeouts | None = None, wall_clock: Callable[[], float] = time.time,
                            key_pair: Any = None) -> AsyncIterator[ProbeContext]:
    """A ProbeContext with no py-libp2p at all: its `host` is a `net.LocalPeer` (our key and identify
    answer), its connections p2pdiag's own TCP/WebSocket, Noise and yamux (`ProbeContext.dial`),
    which the relay probes (`connect_relay(..., dial=ctx.dial)`, identify, HOP) and `circ.secure`
    with `upgrade=ctx.upgrader` use as they are."""
    from p2pdiag.probes.noise import Noise

    key_pair = key_pair or own_key_pair()
    async with trio.open_nursery() as nursery:
        ctx = ProbeContext(net.LocalPeer(key_pair, (IDENTIFY_PROTOCOL,)), timeouts or StepTimeouts(), wall_clock,
                           nursery=nursery, noise=Noise(key_pair))
        try:
            yield ctx
        finally:
            await close_links(ctx)
            nursery.cancel_scope.cancel()


async def close_links(ctx: ProbeContext) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(2):
        for conn in ctx.links.values():
            await net.close_quietly(conn)


async def serve_identify(host: Any, stream: Any) -> None:
    """Identify answered at once. py-libp2p's handler first waits up to 0.5 s, waking every 10 ms, for
    the host to have a listen address, and a watch host listens nowhere: every relay and peer that
    identifies the watch on each new connection cost it 50 wake-ups (a third of a relay probe's CPU)."""
    try:
        await net.write_delimited(stream, net.identify_message(host))
    except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
        net.classify(exc)  # the peer closed or reset the stream: nothing to answer
    finally:
        await net.close_quietly(stream)
