"""The GossipSub probe: canaries across a fleet's real mesh between two light peers.

`GossipWatcher` holds two light peers for the whole watch run: py-libp2p hosts with GossipSub, each
with its own identity, light peer "a" connected only to `target.attach[0]` and "b" only to
`target.attach[1]`, both subscribed to the topic. They never connect to each other: they listen on
no address (nothing can dial them), follow no peer exchange (`net.gossipsub_router`), and each probe
checks it: a connection between them, or a canary received *from* the other light peer, is a bug in
p2pdiag (an `AssertionError`, never a finding), because a canary must cross the fleet to prove
anything.

Each probe publishes `target.canaries` canaries from a and from b and waits, within
`target.timeout_s`, for each on the other side. A canary is a short, recognisable payload:
`CANARY_MARKER` and a JSON object with the watcher's random run id, the probe's number, the sender,
the sequence number and the send time. Latency is measured on one monotonic clock (both light peers
live in this process). Other messages of the topic are let through untouched and unread (a prefix
and an origin compared: messages are signed, so the origin is the publisher's); the other light
peer's canaries are read only up to `MAX_CANARY_BYTES` each and `canary_cap` per light peer and probe.

A light peer whose attach node went away (killed, closed its listener, refused us) makes the probe
an Observation with ok False and the reason; the next probe dials it again.

py-libp2p is reached through `p2pdiag.probes.net` only (the one door).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import trio

from p2pdiag.errors import UsageError
from p2pdiag.probes import net
from p2pdiag.targets import RelayAddr, parse_relay
from p2pdiag.trace.events import ErrorKind
from p2pdiag.watch.model import CanaryResult, GossipFacts, GossipTarget, Module, Observation, Phase

CANARY_MARKER = b"p2pdiag-canary/1 "
MAX_CANARY_BYTES = 512  # a canary is ~150 bytes; anything longer that claims to be one is ignored
NAMES = ("a", "b")


def attach_addr(text: str) -> RelayAddr:
    """A fleet node's address as the config names it (TCP or WebSocket, with /p2p/<id>); UsageError if not."""
    try:
        return parse_relay(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("relay address", "gossipsub attach address", 1)) from None


class _Probe:
    """What one probe sent and what came back (reset at each probe)."""

    def __init__(self, number: int, cap: int) -> None:
        self.number = number
        self.sent: dict[tuple[str, int], float] = {}  # (sender, seq) -> monotonic send time
        self.got: dict[tuple[str, int], tuple[float, str]] = {}  # (sender, seq) -> (receive time, forwarder)
        self.left = dict.fromkeys(NAMES, cap)  # canaries each light peer still reads in this probe
        self.all_in = trio.Event()

    def expect(self, count: int) -> None:
        if len(self.got) >= count:
            self.all_in.set()


@dataclass
class _Light:
    """One light peer: its host and pubsub while it runs (started in the watcher's nursery)."""

    name: str
    attach: RelayAddr
    peer_id: str | None = None
    peer_id_bytes: bytes = b""
    host: Any = None
    pubsub: Any = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    ended: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.pubsub is not None


class GossipWatcher:
    """Two light peers on a fleet's topic for a whole watch run; `probe()` sends canaries across.

    Use as `async with GossipWatcher(target) as w: obs = await w.probe()`. Every wait of a probe is
    bounded by `target.timeout_s`; a network or peer failure is an Observation with ok False.
    """

    def __init__(self, target: GossipTarget, *, heartbeat_s: float = 1.0, canary_cap: int | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        if target.attach[0] == target.attach[1]:
            raise UsageError("a gossipsub target needs two different attach nodes (one light peer on each)")
        self.target = target
        self._lights = {name: _Light(name, attach_addr(addr)) for name, addr in zip(NAMES, target.attach, strict=True)}
        self._heartbeat_s = heartbeat_s
        self._cap = canary_cap if canary_cap is not None else 4 * target.canaries + 16
        self._clock = clock
        self._wall = wall
        self.run_id = secrets.token_hex(8)
        self._probe = _Probe(0, 0)
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self.shortcut: str | None = None  # set if a canary ever came straight from the other light peer

    # --- life -------------------------------------------------------------------------------

    async def __aenter__(self) -> GossipWatcher:
        self._stack = AsyncExitStack()
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._stack is not None and self._nursery is not None
        for light in self._lights.values():
            light.scope.cancel()
        self._nursery.cancel_scope.cancel()
        await self._stack.__aexit__(exc_type, exc, tb)

    async def _run_light(self, light: _Light, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        light.scope = trio.CancelScope()
        light.ended = None
        started = False
        with light.scope:
            try:
                host = net.make_host()
                router = net.gossipsub_router(self._heartbeat_s)

                def validate(forwarder: str, data: bytes, origin: bytes) -> bool:
                    self._received(light, forwarder, data, origin)
                    return True  # never a verdict on others' messages: a rejection would lower their score

                # no listen address: nothing, the other light peer least of all, can dial a light peer
                async with net.running(host), net.pubsub_running(host, router, self.target.topic, validate) as ps:
                    light.host, light.pubsub = host, ps
                    light.peer_id = host.get_id().to_base58()
                    light.peer_id_bytes = host.get_id().to_bytes()
                    started = True
                    task_status.started()
                    await trio.sleep_forever()
            except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
                net.classify(exc)
                light.ended = exc
            finally:
                light.host = light.pubsub = None
        if not started:
            task_status.started()  # it ended before it ran: `light.ended` says why

    # --- receiving --------------------------------------------------------------------------

    def _received(self, light: _Light, forwarder: str, data: bytes, origin: bytes) -> None:
        """Every message of the topic, once per message id, in py-libp2p's task: cheap for others'."""
        if not data.startswith(CANARY_MARKER) or forwarder == light.peer_id:
            return  # not a canary, or our own publish
        other = self._lights["b" if light.name == "a" else "a"]
        if origin != other.peer_id_bytes:
            return  # another watcher's canary, or anyone's junk: not even read (messages are signed: origin is true)
        probe = self._probe
        if probe.left[light.name] <= 0 or len(data) > MAX_CANARY_BYTES:
            return
        probe.left[light.name] -= 1
        try:
            doc = json.loads(data[len(CANARY_MARKER):])
            key = (doc["from"], doc["seq"])
            mine = doc["run"] == self.run_id and doc["probe"] == probe.number and doc["from"] == other.name
        except (ValueError, KeyError, TypeError):
            return
        if not mine or key not in probe.sent or key in probe.got:
            return
        if forwarder == other.peer_id:
            self.shortcut = forwarder  # the probe raises: the canary did not cross the fleet
        probe.got[key] = (self._clock(), forwarder)
        probe.expect(len(probe.sent))

    # --- one probe --------------------------------------------------------------------------

    async def probe(self) -> Observation:
        """Canaries both ways across the mesh; an Observation for every network or peer failure."""
        assert self._nursery is not None, "use GossipWatcher as an async context manager"
        target = self.target
        started_wall, began = self._wall(), self._clock()
        deadline = trio.current_time() + target.timeout_s
        phases: list[Phase] = []
        self._probe = probe = _Probe(self._probe.number + 1, self._cap)

        def observation(ok: bool, facts: GossipFacts | None = None, **failure: Any) -> Observation:
            return Observation(module=Module.GOSSIPSUB, target=target.name, ok=ok, started_unix_s=started_wall,
                               duration_s=self._clock() - began, phases=tuple(phases), gossip=facts, **failure)

        # attach: each light peer running and connected to its node (dialled again after a loss)
        t = self._clock()
        with trio.move_on_at(deadline):
            failures = await self._attach_all()
            phases.append(Phase("attach", self._clock() - t))
            if failures:
                name, kind, message = failures[0]
                return observation(False, self._facts(probe), failed_phase="attach", error_kind=kind.value,
                                   error="; ".join(f"light peer {n}: {m}" for n, _, m in failures))
            self._check_apart()

            # subscribe: each attach node seen subscribed to the topic (its mesh too, if it comes soon)
            t = self._clock()
            missing = await self._wait_subscribed(deadline)
            phases.append(Phase("subscribe", self._clock() - t))

            # canary: publish from both, wait for each on the other side
            t = self._clock()
            publish_failure = await self._publish(probe)
            if publish_failure is None:
                with trio.move_on_at(deadline - 0.05 * target.timeout_s):
                    await probe.all_in.wait()
            phases.append(Phase("canary", self._clock() - t))
            if self.shortcut is not None:
                raise AssertionError(f"a canary came straight from the other light peer {self.shortcut}: "
                                     "the light peers must only meet through the fleet")
            self._check_apart()
            facts = self._facts(probe)
            if publish_failure is not None:
                name, kind, message = publish_failure
                return observation(False, facts, failed_phase="canary", error_kind=kind.value,
                                   error=f"light peer {name} could not publish: {message}")
            if facts.delivered < facts.sent:
                # a node killed just before the probe: its connection may end only now (py-libp2p saw no
                # EOF yet when it published), and that, not the mesh, is why the canaries were lost
                gone = [light for light in self._lights.values()
                        if not light.running or light.attach.peer_id not in net.connected_peers(light.host)]
                if gone:
                    return observation(False, facts, failed_phase="attach", error_kind=ErrorKind.CLOSED.value,
                                       error="; ".join(f"light peer {light.name}: the connection to its attach node "
                                                       f"{light.attach.addr} ended during the probe" for light in gone))
                return observation(False, facts, failed_phase="canary", error=self._lost(facts, missing))
            return observation(True, facts)
        # the budget ran out before the canaries were sent
        failed = ("attach", "subscribe", "canary")[min(len(phases), 2)]
        return observation(False, self._facts(probe), failed_phase=failed, error_kind=ErrorKind.TIMEOUT.value,
                           error=f"the probe's {target.timeout_s:g} s ran out during {failed}", timed_out=True)

    async def _attach_all(self) -> list[tuple[str, ErrorKind, str]]:
        failures: list[tuple[str, ErrorKind, str]] = []

        async def attach(light: _Light) -> None:
            failure = await self._attach(light)
            if failure is not None:
                failures.append((light.name, *failure))

        async with trio.open_nursery() as nursery:
            for light in self._lights.values():
                nursery.start_soon(attach, light)
        return sorted(failures)

    async def _attach(self, light: _Light) -> tuple[ErrorKind, str] | None:
        assert self._nursery is not None
        if not light.running:
            await self._nursery.start(self._run_light, light)
            if not light.running:
                kind, message = net.classify(light.ended) if light.ended is not None else (ErrorKind.OTHER, "ended")
                return kind, f"could not start: {message}"
        node = light.attach
        if node.peer_id in net.connected_peers(light.host):
            return None
        try:
            await net.dial(light.host, node.addr, node.peer_id)
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, message = net.classify(exc)
            return kind, f"cannot reach its attach node {node.addr}: {message}"
        return None

    def _check_apart(self) -> None:
        a, b = self._lights["a"], self._lights["b"]
        for light, other in ((a, b), (b, a)):
            if light.running and other.peer_id in net.connected_peers(light.host):
                raise AssertionError(f"light peer {light.name} is connected to light peer {other.name}: "
                                     "canaries must only cross the fleet")

    async def _wait_subscribed(self, deadline: float) -> list[str]:
        """Wait (up to a third of what is left, at most a few heartbeats) for each light peer to see its
        attach node subscribed and in its mesh; the names of those whose node never showed subscribed."""
        wait_until = min(trio.current_time() + 3 * self._heartbeat_s + 1,
                         trio.current_time() + (deadline - trio.current_time()) / 3)

        def ready(light: _Light, mesh_too: bool) -> bool:
            if not light.running:
                return False
            mesh, subscribed, _ = net.pubsub_view(light.pubsub, self.target.topic)
            return light.attach.peer_id in (mesh if mesh_too else subscribed)

        with trio.move_on_at(wait_until):
            # py-libp2p fills its mesh in its heartbeat task and signals nothing: polled, bounded above
            while not all(ready(light, mesh_too=True) for light in self._lights.values()):  # noqa: ASYNC110
                await trio.sleep(0.05)
        return [light.name for light in self._lights.values() if not ready(light, mesh_too=False)]

    async def _publish(self, probe: _Probe) -> tuple[str, ErrorKind, str] | None:
        for seq in range(self.target.canaries):
            for light in self._lights.values():
                payload = CANARY_MARKER + json.dumps(
                    {"run": self.run_id, "probe": probe.number, "from": light.name, "seq": seq,
                     "sent_unix_s": round(self._wall(), 6)}, separators=(",", ":")).encode()
                probe.sent[(light.name, seq)] = self._clock()
                try:
                    await net.publish(light.pubsub, self.target.topic, payload)
                except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
                    kind, message = net.classify(exc)
                    return light.name, kind, message
        return None

    def _facts(self, probe: _Probe) -> GossipFacts:
        canaries = []
        for (sender, seq), sent in sorted(probe.sent.items()):
            got = probe.got.get((sender, seq))
            canaries.append(CanaryResult(sender=sender, seq=seq, delivered=got is not None,
                                         latency_s=None if got is None else max(0.0, got[0] - sent),
                                         via=None if got is None else got[1]))
        mesh_peers: dict[str, int] = {}
        topic_peers: dict[str, int] = {}
        seen: set[str] = set()
        for light in self._lights.values():
            if light.running:
                mesh, subscribed, _ = net.pubsub_view(light.pubsub, self.target.topic)
                mesh_peers[light.name], topic_peers[light.name] = len(mesh), len(subscribed)
                seen.update(subscribed)
        return GossipFacts(canaries=tuple(canaries), mesh_peers=mesh_peers, topic_peers=topic_peers,
                           subscribed={peer: peer in seen for peer in self.target.watched})

    def _lost(self, facts: GossipFacts, unsubscribed: list[str]) -> str:
        parts = []
        for sender, receiver in (("a", "b"), ("b", "a")):
            mine = [c for c in facts.canaries if c.sender == sender]
            got = sum(1 for c in mine if c.delivered)
            if got < len(mine):
                parts.append(f"{len(mine) - got} of {len(mine)} canaries from light peer {sender} "
                             f"({self._lights[sender].attach.peer_id}) never reached light peer {receiver} "
                             f"({self._lights[receiver].attach.peer_id})")
        for name in unsubscribed:
            parts.append(f"light peer {name}'s attach node {self._lights[name].attach.peer_id} was not seen "
                         f"subscribed to {self.target.topic!r}")
        return "; ".join(parts)

    def negotiated(self) -> dict[str, str | None]:
        """The meshsub protocol each light peer speaks with its attach node (None: not attached)."""
        out: dict[str, str | None] = {}
        for light in self._lights.values():
            protocols = net.pubsub_view(light.pubsub, self.target.topic)[2] if light.running else {}
            out[light.name] = protocols.get(light.attach.peer_id)
        return out

    @property
    def light_peer_ids(self) -> dict[str, str | None]:
        return {light.name: light.peer_id for light in self._lights.values()}
