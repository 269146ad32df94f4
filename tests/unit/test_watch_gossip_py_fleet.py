"""The GossipSub probe against a fleet of py-libp2p nodes in this process (loopback): canaries, and what
else a fleet sends on the topic (chat messages, other watchers' canaries, junk wearing the marker).
The js fleet, the browser and the faults are in tests/interop/test_watch_gossip.py."""

from __future__ import annotations

import json

import pytest
import trio

from p2pdiag.errors import UsageError
from p2pdiag.probes import net
from p2pdiag.watch.gossip import CANARY_MARKER, MAX_CANARY_BYTES, GossipWatcher
from p2pdiag.watch.model import GossipTarget

TOPIC = "chat"


def _target(x: str, y: str, canaries: int = 2, timeout_s: float = 5) -> GossipTarget:
    return GossipTarget(name="py-fleet", interval_s=10, timeout_s=timeout_s, topic=TOPIC, attach=(x, y),
                        canaries=canaries)


def test_canaries_cross_a_py_fleet_and_the_rest_of_the_topic_is_ignored():
    async def main() -> None:
        x, y = net.make_host(), net.make_host()
        async with net.running(x, ["/ip4/127.0.0.1/tcp/0"]), net.running(y, ["/ip4/127.0.0.1/tcp/0"]), \
                net.pubsub_running(x, net.gossipsub_router(0.5), TOPIC, lambda f, d, o: True) as px, \
                net.pubsub_running(y, net.gossipsub_router(0.5), TOPIC, lambda f, d, o: True):
            x_id, y_id = x.get_id().to_base58(), y.get_id().to_base58()
            x_addr, y_addr = f"{x.get_addrs()[0]}", f"{y.get_addrs()[0]}"
            await net.dial(y, x_addr, x_id)
            w = GossipWatcher(_target(x_addr, y_addr), heartbeat_s=0.5)
            async with w:
                first = await w.probe()
                assert first.ok, first
                assert [(c.sender, c.seq, c.via) for c in first.gossip.canaries] == [
                    ("a", 0, y_id), ("a", 1, y_id), ("b", 0, x_id), ("b", 1, x_id)]

                # the fleet's own traffic, and junk that wears the marker, while a probe runs
                junk = [b"hello everyone", CANARY_MARKER + b"{not json", CANARY_MARKER + b"[]",
                        CANARY_MARKER + json.dumps({"run": w.run_id, "probe": 2, "from": "a", "seq": 0}).encode(),
                        CANARY_MARKER + b" " * MAX_CANARY_BYTES,
                        CANARY_MARKER + json.dumps({"run": "another-watcher", "probe": 2, "from": "b", "seq": 0,
                                                    "sent_unix_s": 0}).encode()]

                async def chatter() -> None:
                    for data in junk * 3:
                        await net.publish(px, TOPIC, data)
                        await trio.sleep(0.01)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(chatter)
                    second = await w.probe()
                assert second.ok, second
                # exactly the watcher's own canaries counted: x's "run id" forgery came from x, not light peer a
                assert second.gossip.sent == second.gossip.delivered == 4
                assert {c.via for c in second.gossip.canaries} == {x_id, y_id}
                assert second.gossip.mesh_peers == {"a": 1, "b": 1}

            # the cap: a light peer reads at most canary_cap canaries a probe (here 1 of the 2 sent to it)
            capped = GossipWatcher(_target(x_addr, y_addr, timeout_s=2.5), heartbeat_s=0.5, canary_cap=1)
            async with capped:
                obs = await capped.probe()
            assert not obs.ok and obs.failed_phase == "canary" and obs.gossip.delivered == 2, obs
            assert {c.sender for c in obs.gossip.canaries if c.delivered} == {"a", "b"}

    trio.run(main)


def test_the_same_node_twice_or_a_bad_address_is_refused_in_one_line():
    node = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD5T3GirCA6Le9i2xYzYdq7KRKTvmrHa5r3W9w182GUqK"
    with pytest.raises(UsageError, match="two different attach nodes"):
        GossipWatcher(_target(node, node))
    with pytest.raises(UsageError, match="gossipsub attach address"):
        GossipWatcher(_target(node, "/ip4/127.0.0.1/tcp/4001"))


def test_a_probe_outside_its_context_is_a_bug():
    node = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD5T3GirCA6Le9i2xYzYdq7KRKTvmrHa5r3W9w182GUqK"
    other = "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWC7uyHBnEGtET65nn3uDMM8TwSwQQzafCniHRYUpESXJg"
    with pytest.raises(AssertionError, match="async context manager"):
        trio.run(GossipWatcher(_target(node, other)).probe)


def test_nothing_listens_when_the_attach_nodes_are_gone():
    # two ports nothing listens on: both light peers report their attach node, within the budget
    async def main() -> None:
        w = GossipWatcher(_target("/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD5T3GirCA6Le9i2xYzYdq7KRKTvmrHa5r3W9w182GUqK",
                                  "/ip4/127.0.0.1/tcp/7/ws/p2p/12D3KooWC7uyHBnEGtET65nn3uDMM8TwSwQQzafCniHRYUpESXJg"))
        async with w:
            obs = await w.probe()
        assert not obs.ok and obs.failed_phase == "attach" and obs.error_kind == "refused", obs
        assert "light peer a" in obs.error and "light peer b" in obs.error
        assert obs.duration_s < 5 and obs.gossip.sent == 0

    trio.run(main)
