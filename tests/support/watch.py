"""What the tests of watch share (its probes', its GossipSub probe's and the fleet's)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import parse_relay
from p2pdiag.watch.hold import ReservationHolder
from p2pdiag.watch.model import RelayTarget
from p2pdiag.watch.probes import probe_context
from support import Peer

FAST = StepTimeouts(relay_connect=3, identify=3, hop=3, reserve=3, secure=3)


def run(fn, *args):
    """Run fn(ctx, *args) in one watch context (one host) under trio."""

    async def main():
        async with probe_context(FAST) as ctx:
            return await fn(ctx, *args)

    return trio.run(main)


def relay_target(addr: str, **kw) -> RelayTarget:
    return RelayTarget(name="r1", interval_s=kw.pop("interval_s", 30), timeout_s=kw.pop("timeout_s", 8),
                       relay=parse_relay(addr), **kw)


def phase_map(obs) -> dict[str, float]:
    return {p.name: p.seconds for p in obs.phases}


class States(list):
    """The states a holder reported, with a wait for the one a test expects."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def report(self, state) -> None:
        self.append(state)
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, predicate, timeout_s: float) -> None:
        with trio.fail_after(timeout_s):
            while not (self and predicate(self)):
                await self._changed.wait()


@dataclass
class Restart:
    states: States
    loss_seen_s: float  # from the relay's stop to the holder's up=False
    again: Any  # what `start` returned for the restarted relay
    connections_left: list  # the watch host's open connections once the holder was cancelled


def hold_through_restart(target: RelayTarget, held: Callable[[States], bool], stop: Callable[[], None],
                         start: Callable[[], Any]) -> Restart:
    """A holder on TARGET until HELD(states); the relay stopped (STOP) and started again (START), both
    blocking, run in a thread; until the holder reports up=True again; then cancelled."""
    states = States()

    async def main():
        async with probe_context(FAST) as ctx:
            holder = ReservationHolder(ctx, target, states.report)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(holder.run)
                await states.until(held, 20)
                await trio.to_thread.run_sync(stop)
                stopped = time.monotonic()
                await states.until(lambda s: not s[-1].up, 5)
                seen = time.monotonic() - stopped
                again = await trio.to_thread.run_sync(start)
                await states.until(lambda s: s[-1].up, 15)
                nursery.cancel_scope.cancel()
            left = [c for c in ctx.host.get_network().get_connections() if not c.is_closed]
            return Restart(states, seen, again, left)

    return trio.run(main)


FLEET_TOPIC = "chat/p2pdiag-test"


def control(node: Peer, cmd: dict) -> dict:
    """Send a fleet node (interop/js/fleet-node.mjs) one command on its stdin; its one-line answer."""
    assert node.proc is not None
    node.proc.popen.stdin.write(json.dumps(cmd) + "\n")
    node.proc.popen.stdin.flush()
    line = node.proc.wait_line(lambda s: s.startswith('{"ok"'), timeout=10)
    answer = json.loads(line)
    assert answer["ok"] and answer["cmd"] == cmd["cmd"], answer
    return answer
