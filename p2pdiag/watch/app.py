"""One watch run put together: the probes' shared context, the reservation holders, the GossipSub
light peers, the metrics and their HTTP server, the schedule, and the order they stop in.

The HTTP server starts first, in a thread and trio loop of its own (`http.serve_in_thread`), so a
busy probe loop never delays a scrape; its `/probe` runs probes in this loop through a
`http.ProbeBridge`. On a stop (Ctrl-C, SIGTERM, --duration) the probes end first (a `/probe`
running is cancelled, later ones are 503) and the trace gets its last events; the server, which
that cancellation does not reach, keeps answering with the last figures for --linger seconds and
is closed last, its thread joined, so a scrape during shutdown still gets a full answer.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import trio

from p2pdiag.trace.events.watch import TargetListed, WatchStarted
from p2pdiag.trace.recorder import Recorder
from p2pdiag.watch.config import WatchConfig
from p2pdiag.watch.model import AnyTarget, GossipTarget, Module, Observation, PeerTarget, RelayTarget, UpgradeTarget
from p2pdiag.watch.runner import Holder, Probe, ReservationCallback, Sink, Watch
from p2pdiag.watch.sinks import MetricsSink

PROBE_ENDPOINT_MAX_TIMEOUT_S = 60.0  # /probe never runs longer, whatever the scrape asks


def what(target: AnyTarget) -> str:
    if isinstance(target, RelayTarget):
        return target.relay.addr
    if isinstance(target, PeerTarget | UpgradeTarget):
        return target.peer_id
    if isinstance(target, GossipTarget):
        return f"topic {target.topic}"
    raise TypeError(target)


@contextlib.asynccontextmanager
async def fleet_probes(conf: WatchConfig) -> AsyncIterator[tuple[Probe, list[Holder]]]:
    """The real probes: one py-libp2p host for them all, a holder per relay that reserves, and the
    two light peers of each GossipSub target, alive for the whole run."""
    from p2pdiag.watch import gossip, hold, probes

    async with contextlib.AsyncExitStack() as stack:
        ctx = await stack.enter_async_context(probes.probe_context())
        watchers: dict[str, Any] = {}
        for t in conf.of(Module.GOSSIPSUB):
            assert isinstance(t, GossipTarget)
            watchers[t.name] = await stack.enter_async_context(gossip.GossipWatcher(t))

        async def probe(target: AnyTarget) -> Observation:
            if isinstance(target, RelayTarget):
                return await probes.probe_relay(ctx, target)
            if isinstance(target, PeerTarget):
                return await probes.probe_peer(ctx, target)
            if isinstance(target, UpgradeTarget):
                return await probes.probe_upgrade(ctx, target)
            if isinstance(target, GossipTarget):
                if target.name in watchers:
                    return await watchers[target.name].probe()
                async with gossip.GossipWatcher(target) as once:  # /probe: light peers for this probe only
                    return await once.probe()
            raise TypeError(target)

        def holder(target: RelayTarget) -> Holder:
            async def run(report: ReservationCallback) -> None:
                await hold.ReservationHolder(ctx, target, report).run()

            return run

        holders = [holder(t) for t in conf.of(Module.RELAY) if isinstance(t, RelayTarget) and t.reserve]
        yield probe, holders


async def watch_fleet(conf: WatchConfig, rec: Recorder, sinks: Sequence[Sink], duration_s: float | None,
                      linger_s: float, on_listening: Callable[[str], None],
                      probes: Any = fleet_probes) -> None:
    async with contextlib.AsyncExitStack() as served:
        metrics = None
        bridge = None
        bound = None
        if conf.metrics is not None:
            from p2pdiag.watch import http
            from p2pdiag.watch.metrics import WatchMetrics

            metrics = WatchMetrics()
            metrics.targets(conf.targets, str(conf.shard) if conf.shard else None)
            bridge = http.ProbeBridge()
            # listening first: a port taken ends the run before any probe starts
            bound = await served.enter_async_context(http.serve_in_thread(
                (conf.metrics.host, conf.metrics.port), metrics, http.parse_target, bridge,
                max_timeout_s=PROBE_ENDPOINT_MAX_TIMEOUT_S))
        watching = False
        try:
            async with probes(conf) as (probe, holders), contextlib.AsyncExitStack() as bridged:
                if bridge is not None:
                    await bridged.enter_async_context(bridge.open(probe))
                    on_listening(f"{conf.metrics.host}:{bound}")  # /probe works from now on too
                rec.record(WatchStarted, started_unix_s=time.time() - rec.now(), targets=len(conf.targets),
                           shard=str(conf.shard) if conf.shard else None,
                           metrics=None if bound is None else f"{conf.metrics.host}:{bound}")
                for t in conf.targets:
                    rec.record(TargetListed, module=t.module.value, target=t.name, interval_s=t.interval_s,
                               timeout_s=t.timeout_s, what=what(t))
                all_sinks = [*sinks, *([MetricsSink(metrics)] if metrics is not None else [])]
                watch = Watch(conf.targets, probe, holders, all_sinks)
                watching = True
                with trio.move_on_after(math.inf if duration_s is None else duration_s):
                    await watch.run()
        finally:  # the probes have ended (/probe answers 503 now): the last figures stay served a while
            if watching and linger_s > 0 and metrics is not None:
                with trio.CancelScope(shield=True):
                    await trio.sleep(linger_s)
