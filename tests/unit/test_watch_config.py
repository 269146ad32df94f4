"""watch's config file and short form: targets built right, every mistake one line naming where."""

from __future__ import annotations

import pytest

from p2pdiag.errors import UsageError
from p2pdiag.watch import config as cfg
from p2pdiag.watch.model import GossipTarget, Module, PeerTarget, RelayTarget, UpgradeTarget

RELAY_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
A_ID = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
B_ID = "12D3KooWLRPJAA5o6Z6F7bZ8F2LkVqbX6XvXx1QZz7n2dEhpSuEG"
R = f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}"
A = f"/ip4/127.0.0.1/tcp/4002/p2p/{A_ID}"
B = f"/ip4/127.0.0.1/tcp/4003/ws/p2p/{B_ID}"

FULL = f'''
interval = 20
timeout = 5
metrics = "127.0.0.1:0"

[[relay]]
name = "eu"
addr = "{R}"

[[peer]]
name = "a"
addrs = ["{A}"]
relays = ["eu"]
upgrade = true
upgrade_interval = 300

[[peer]]
name = "b"
addrs = ["{B}"]
interval = 10

[[gossipsub]]
topic = "chat"
attach = ["a", "b"]
watch = ["a", "{B_ID}"]
canaries = 2
'''


def test_a_full_config_becomes_its_targets():
    conf = cfg.loads(FULL, "fleet.toml")
    relay, a, b, up, chat = conf.targets
    assert isinstance(relay, RelayTarget) and relay.relay.peer_id == RELAY_ID and relay.reserve
    assert (relay.interval_s, relay.timeout_s) == (20.0, 5.0)
    assert isinstance(a, PeerTarget) and a.peer_id == A_ID and a.addrs == (A,) and a.relays == (relay.relay,)
    assert isinstance(b, PeerTarget) and (b.interval_s, b.timeout_s) == (10.0, 5.0) and b.relays == ()
    assert isinstance(up, UpgradeTarget) and up.name == "a" and up.interval_s == 300.0 and up.relays == (relay.relay,)
    assert isinstance(chat, GossipTarget) and chat.attach == (A, B) and chat.watched == (A_ID, B_ID)
    assert chat.canaries == 2 and chat.name == "chat"
    assert conf.metrics == cfg.Listen("127.0.0.1", 0)
    assert [t.module for t in conf.targets] == [Module.RELAY, Module.PEER, Module.PEER, Module.UPGRADE,
                                                Module.GOSSIPSUB]


@pytest.mark.parametrize("text, message", [
    ("interval = 5\ntimeout = 6\n[[relay]]\naddr = \"R\"", "top level: timeout: 6 seconds is not below the interval"),
    ("[[relay]]\naddr = \"/ip4/1.2.3.4/tcp/1\"", "[[relay]] 1: addr: relay address"),
    ("[[relay]]\naddr = 5", "[[relay]] 1: addr: expected a string, got int"),
    ("[[peer]]\nname = \"x\"\nadrs = []", "[[peer]] 1 (x): adrs: unknown key"),
    ("[[peer]]\nname = \"x\"", "[[peer]] 1 (x): give the peer's id"),
    (f"[[peer]]\naddrs = [\"{A}\", \"{B}\"]", "the addresses name more than one peer id"),
    (f"[[peer]]\naddrs = [\"{R}/p2p-circuit/p2p/{A_ID}\"]", "goes through a relay"),
    (f"[[peer]]\naddrs = [\"{A}\"]\nupgrade = true", "upgrade: the WebRTC upgrade is signalled through a relay"),
    (f"[[peer]]\nname = \"a\"\naddrs = [\"{A}\"]\n[[gossipsub]]\ntopic = \"t\"\nattach = [\"a\"]",
     "attach: exactly two fleet nodes"),
    (f"[[peer]]\nname = \"a\"\naddrs = [\"{A}\"]\n[[gossipsub]]\ntopic = \"t\"\nattach = [\"a\", \"{A}\"]",
     "two different nodes"),
    ("[[gossipsub]]\ntopic = \"t\"\nattach = [\"nobody\", \"none\"]", "neither a [[peer]] name nor an address"),
    (f"[[relay]]\naddr = \"{R}\"\ninterval = 0.5", "too short"),
    (f"[[relay]]\naddr = \"{R}\"\ninterval = inf", "out of range"),
    (f"[[relay]]\naddr = \"{R}\"\nreserve = 1", "reserve: expected true or false"),
    (f"[[peer]]\naddrs = [\"{A}\"]\nrelays = [\"{R}\"]\nhold = 10", "hold: 10 seconds: from 0 to the probe's timeout"),
    (f"[[peer]]\naddrs = [\"{A}\"]\nhold = 2", "hold: holds a circuit through a relay"),
    (f"[[relay]]\nname = \"x\"\naddr = \"{R}\"\n[[relay]]\nname = \"x\"\naddr = \"{R}\"", "names two relays"),
    ("x =", "not TOML"),
    ("", "nothing to watch"),
    ("metrics = \"nohost\"", "expected HOST:PORT"),
    ("shard = \"3/2\"", "K must be 1 to N"),
])
def test_every_mistake_is_one_line_naming_the_file_and_the_key(text, message):
    with pytest.raises(UsageError) as err:
        cfg.loads(text.replace("\"R\"", f"\"{R}\""), "fleet.toml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert "fleet.toml" in str(err.value) or "--" in str(err.value) or "config" in str(err.value)


def test_the_short_form_is_the_config_it_stands_for():
    conf = cfg.from_options([R], [A, B, A_ID], "chat", 3, None, upgrade=True)
    relay, p1, p2, up, up2, chat = conf.targets
    assert up2.peer_id == B_ID
    assert relay.name == "relay-1" and relay.interval_s == 3.0 and relay.timeout_s == pytest.approx(2.7)
    # the bare id is the same peer as the first address: one target, dialed both ways
    assert p1.peer_id == A_ID and p1.addrs == (A,) and p1.relays == (relay.relay,)
    assert p2.peer_id == B_ID and p2.relays == (relay.relay,)  # every peer is dialed through every --relay
    assert isinstance(up, UpgradeTarget) and up.peer_id == A_ID
    assert chat.attach == (A, B) and chat.watched == (A_ID, B_ID)


@pytest.mark.parametrize("relays, peers, topic, message", [
    ([], [A_ID], None, "give --relay"),
    ([], [A], "t", "--topic needs two --peer"),
    ([], [], None, "nothing to watch"),
    (["/ip4/1.2.3.4"], [], None, "relay address"),
])
def test_short_form_mistakes(relays, peers, topic, message):
    with pytest.raises(UsageError) as err:
        cfg.from_options(relays, peers, topic, 30, None, False)
    assert message in str(err.value)


def test_shards_cover_every_target_exactly_once():
    lines = []
    for n in range(60):
        lines += ["[[relay]]", f'name = "r{n}"', f'addr = "{R}"']
    conf = cfg.loads("\n".join(lines), "many.toml")
    shards = [conf.sharded(cfg.Shard(k, 3)) for k in (1, 2, 3)]
    names = [t.name for s in shards for t in s.targets]
    assert sorted(names) == sorted(t.name for t in conf.targets)  # the union is everything, no repeats
    assert all(5 <= len(s.targets) <= 35 for s in shards)  # and the hash spreads them
    # stable: the same split in another process (sha256, not Python's salted hash)
    assert [t.name for t in shards[0].targets] == [t.name for t in conf.sharded(cfg.Shard(1, 3)).targets]


def test_config_file_is_read_bounded(tmp_path):
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (cfg.CONFIG_MAX_BYTES + 1))
    with pytest.raises(UsageError):
        cfg.load(big)
    with pytest.raises(UsageError):
        cfg.load(tmp_path)  # a directory
