"""What `watch` is told to watch: a TOML file, or the short form's options, into targets.

    interval = 30                  # seconds between two probes of a target (each target may say its own)
    timeout = 10                   # seconds one probe may take; below the interval
    metrics = "127.0.0.1:9464"     # serve /metrics and /probe here

    [[relay]]
    name = "relay-eu"
    addr = "/ip4/198.51.100.7/tcp/4001/p2p/12D3KooW…"
    reserve = true                 # hold a reservation between probes and follow its life

    [[peer]]
    name = "node-a"
    addrs = ["/ip4/198.51.100.8/tcp/4002/p2p/12D3KooW…"]   # dialed directly (and what identify announces)
    relays = ["relay-eu"]          # also dialed through these ([[relay]] names or relay addresses)
    upgrade = true                 # also the whole WebRTC upgrade (`dial`), every upgrade_interval seconds
    upgrade_interval = 600

    [[gossipsub]]
    name = "chat"
    topic = "chat-room"
    attach = ["node-a", "node-b"]  # two fleet nodes ([[peer]] names or full addresses): one light peer on each
    watch = ["node-a", "node-b"]   # whose subscription to the topic is reported ([[peer]] names or peer ids)

A mistake is one line naming the file, the table and the key (exit 2), before anything runs.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from p2pdiag.errors import UsageError
from p2pdiag.inputs import MiB, read_text
from p2pdiag.targets import RelayAddr, check_peer_id, parse_relay, shown
from p2pdiag.watch.model import AnyTarget, GossipTarget, Module, PeerTarget, RelayTarget, UpgradeTarget

CONFIG_MAX_BYTES = MiB
MAX_TARGETS = 10_000
DEFAULT_INTERVAL_S = 30.0
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_UPGRADE_INTERVAL_S = 600.0
DEFAULT_UPGRADE_TIMEOUT_S = 30.0
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 86_400.0
MAX_NAME_CHARS = 64
MAX_CANARIES = 100

_TOP_KEYS = {"interval", "timeout", "metrics", "shard", "relay", "peer", "gossipsub"}
_RELAY_KEYS = {"name", "addr", "reserve", "interval", "timeout"}
_PEER_KEYS = {"name", "id", "addrs", "relays", "learn_addrs", "hold", "upgrade", "upgrade_interval",
              "upgrade_timeout", "interval", "timeout"}
_GOSSIP_KEYS = {"name", "topic", "attach", "watch", "canaries", "interval", "timeout"}


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1-based, as written: 1/2, 2/2
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def keeps(self, target: AnyTarget) -> bool:
        return target.shard(self.count) == self.index - 1


@dataclass(frozen=True, slots=True)
class WatchConfig:
    targets: tuple[AnyTarget, ...]
    metrics: Listen | None = None
    shard: Shard | None = None
    source: str = "options"  # the config file's path, or "options" for the short form

    def of(self, module: Module) -> tuple[AnyTarget, ...]:
        return tuple(t for t in self.targets if t.module is module)

    def sharded(self, shard: Shard | None) -> WatchConfig:
        """Only the targets SHARD covers: N instances with 1/N … N/N cover each target exactly once."""
        if shard is None:
            return self
        return replace(self, targets=tuple(t for t in self.targets if shard.keeps(t)), shard=shard)


def parse_listen(text: str, what: str = "--metrics") -> Listen:
    """HOST:PORT ([v6]:PORT). Port 0 lets the system choose (the bound port is printed)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise UsageError(f"{what} {shown(text)}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"{what} {shown(text)}: the port must be a number from 0 to 65535")
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise UsageError(f"{what} {shown(text)}: the host must be an IP address (or localhost)") from None
    return Listen(host, int(port_text))


def parse_shard(text: str, what: str = "--shard") -> Shard:
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise UsageError(f"{what} {shown(text)}: expected K/N, e.g. 1/2 (this instance is shard K of N)")
    k, n = int(index), int(count)
    if not 1 <= n <= 1000 or not 1 <= k <= n:
        raise UsageError(f"{what} {shown(text)}: K must be 1 to N and N 1 to 1000")
    return Shard(k, n)


class _Table:
    """One table of the file, for messages that say where: `config.toml: [[peer]] 2 (node-b): addrs: …`."""

    def __init__(self, source: str, kind: str, index: int | None, data: Any, allowed: set[str]) -> None:
        self.source = source
        self.where = f"[[{kind}]] {index}" if index is not None else "top level"
        if not isinstance(data, dict):
            raise self.error(None, f"expected a table, got {type(data).__name__}")
        self.data = data
        name = data.get("name")
        if isinstance(name, str) and name:
            self.where += f" ({shown(name)[1:-1]})"
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.error(unknown[0], f"unknown key (known: {', '.join(sorted(allowed))})")

    def error(self, key: str | None, message: str) -> UsageError:
        at = f"{self.where}: {key}" if key else self.where
        return UsageError(f"config {self.source}: {at}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def required(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            raise self.error(key, "missing")
        return self.get(key, kind)

    def strings(self, key: str) -> list[str]:
        value = self.get(key, list, [])
        for item in value:
            if not isinstance(item, str):
                raise self.error(key, f"expected a list of strings, found {type(item).__name__}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.get(key, (int, float), default)
        if not math.isfinite(value) or not MIN_INTERVAL_S / 10 <= value <= MAX_INTERVAL_S:
            raise self.error(key, f"{value!r} seconds is out of range ({MIN_INTERVAL_S / 10:g} to {MAX_INTERVAL_S:g})")
        return float(value)

    def timing(self, defaults: tuple[float, float], interval_key: str = "interval",
               timeout_key: str = "timeout") -> tuple[float, float]:
        interval = self.seconds(interval_key, defaults[0])
        if interval < MIN_INTERVAL_S:
            raise self.error(interval_key, f"{interval:g} seconds is too short (at least {MIN_INTERVAL_S:g})")
        timeout = self.seconds(timeout_key, min(defaults[1], interval * 0.9))
        if timeout >= interval:
            raise self.error(timeout_key, f"{timeout:g} seconds is not below the interval ({interval:g} s): "
                                          "a probe must end before the next one starts")
        return interval, timeout

    def name(self, fallback: str) -> str:
        """The table's `name`, or FALLBACK (an address or peer id, which may be longer) when none is given."""
        if "name" not in self.data:
            return fallback
        name = self.get("name", str)
        if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise self.error("name", f"{shown(name)}: 1 to {MAX_NAME_CHARS} printable characters")
        return name


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true or false", list: "a list",
             dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _direct_addr(table: _Table, key: str, text: str) -> tuple[str, str]:
    """A direct address ending in /p2p/PEER_ID (not through a relay): (address, peer id)."""
    if "/p2p-circuit" in text:
        raise table.error(key, f"{shown(text)} goes through a relay; list the relay under relays instead")
    try:
        relay = parse_relay(text)  # the same shape: a transport address ending in /p2p/ID
    except UsageError as exc:
        raise table.error(key, str(exc).replace("relay address", "address")) from None
    return relay.addr, relay.peer_id


def load(path: Path) -> WatchConfig:
    text = read_text(path, "config", CONFIG_MAX_BYTES)
    return loads(text, str(path))


def loads(text: str, source: str = "config") -> WatchConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {source}: not TOML: {exc}") from None
    top = _Table(source, "", None, doc, _TOP_KEYS)
    defaults = top.timing((DEFAULT_INTERVAL_S, DEFAULT_TIMEOUT_S))
    metrics_text = top.get("metrics", str)
    metrics = parse_listen(metrics_text, f"config {source}: metrics") if metrics_text is not None else None
    shard_text = top.get("shard", str)
    shard = parse_shard(shard_text, f"config {source}: shard") if shard_text is not None else None

    sections = {k: top.get(k, list, []) for k in ("relay", "peer", "gossipsub")}
    if sum(len(v) for v in sections.values()) > MAX_TARGETS:
        raise top.error(None, f"more than {MAX_TARGETS} targets; split them with shard = \"K/N\"")
    relays: dict[str, RelayTarget] = {}
    for n, data in enumerate(sections["relay"], start=1):
        t = _Table(source, "relay", n, data, _RELAY_KEYS)
        addr = t.required("addr", str)
        try:
            relay = parse_relay(addr)
        except UsageError as exc:
            raise t.error("addr", str(exc)) from None
        name = t.name(relay.addr)
        if name in relays:
            raise t.error("name", f"{shown(name)} names two relays")
        interval, timeout = t.timing(defaults)
        relays[name] = RelayTarget(name=name, interval_s=interval, timeout_s=timeout, relay=relay,
                                   reserve=t.get("reserve", bool, True))

    peers: dict[str, PeerTarget] = {}
    upgrades: list[UpgradeTarget] = []
    for n, data in enumerate(sections["peer"], start=1):
        t = _Table(source, "peer", n, data, _PEER_KEYS)
        addrs = [_direct_addr(t, "addrs", a) for a in t.strings("addrs")]
        ids = {pid for _, pid in addrs}
        peer_id = t.get("id", str)
        if peer_id is not None:
            try:
                peer_id = check_peer_id(peer_id)
            except UsageError as exc:
                raise t.error("id", str(exc)) from None
            ids.add(peer_id)
        if not ids:
            raise t.error(None, "give the peer's id, or addrs ending in /p2p/PEER_ID")
        if len(ids) > 1:
            raise t.error("addrs", "the addresses name more than one peer id")
        peer_id = ids.pop()
        via = tuple(_relay_ref(t, r, relays) for r in t.strings("relays"))
        if not addrs and not via:
            raise t.error(None, "nothing to dial: give addrs, relays, or both")
        name = t.name(peer_id)
        if name in peers:
            raise t.error("name", f"{shown(name)} names two peers")
        interval, timeout = t.timing(defaults)
        hold = t.get("hold", (int, float), 0)
        if not math.isfinite(hold) or not 0 <= hold <= timeout - 1:
            raise t.error("hold", f"{hold!r} seconds: from 0 to the probe's timeout less a second ({timeout - 1:g})")
        if hold and not via:
            raise t.error("hold", "holds a circuit through a relay: give relays")
        peers[name] = PeerTarget(name=name, interval_s=interval, timeout_s=timeout, peer_id=peer_id,
                                 addrs=tuple(a for a, _ in addrs), relays=via,
                                 learn_addrs=t.get("learn_addrs", bool, True), hold_s=float(hold))
        if t.get("upgrade", bool, False):
            if not via:
                raise t.error("upgrade", "the WebRTC upgrade is signalled through a relay: give relays")
            u_interval, u_timeout = t.timing((DEFAULT_UPGRADE_INTERVAL_S, DEFAULT_UPGRADE_TIMEOUT_S),
                                             "upgrade_interval", "upgrade_timeout")
            upgrades.append(UpgradeTarget(name=name, interval_s=u_interval, timeout_s=u_timeout,
                                          peer_id=peer_id, relays=via))

    gossips: dict[str, GossipTarget] = {}
    for n, data in enumerate(sections["gossipsub"], start=1):
        t = _Table(source, "gossipsub", n, data, _GOSSIP_KEYS)
        topic = t.required("topic", str)
        if not topic or len(topic) > 256:
            raise t.error("topic", "1 to 256 characters")
        attach = t.strings("attach")
        if len(attach) != 2:
            raise t.error("attach", "exactly two fleet nodes, one light peer attached to each")
        ends = tuple(_attach_ref(t, a, peers) for a in attach)
        if ends[0].rsplit("/p2p/", 1)[1] == ends[1].rsplit("/p2p/", 1)[1]:
            raise t.error("attach", "two different nodes: a canary must cross the mesh between them")
        watched = tuple(_peer_ref(t, w, peers) for w in t.strings("watch"))
        canaries = t.get("canaries", int, 3)
        if not 1 <= canaries <= MAX_CANARIES:
            raise t.error("canaries", f"1 to {MAX_CANARIES}")
        name = t.name(topic)
        if name in gossips:
            raise t.error("name", f"{shown(name)} names two gossipsub targets")
        interval, timeout = t.timing(defaults)
        gossips[name] = GossipTarget(name=name, interval_s=interval, timeout_s=timeout, topic=topic,
                                     attach=(ends[0], ends[1]), watched=watched, canaries=canaries)

    targets: tuple[AnyTarget, ...] = (*relays.values(), *peers.values(), *upgrades, *gossips.values())
    if not targets:
        raise UsageError(f"config {source}: nothing to watch: add [[relay]], [[peer]] or [[gossipsub]] tables")
    return WatchConfig(targets=targets, metrics=metrics, shard=shard, source=source)


def _relay_ref(t: _Table, ref: str, relays: dict[str, RelayTarget]) -> RelayAddr:
    if ref in relays:
        return relays[ref].relay
    if not ref.startswith("/"):
        raise t.error("relays", f"{shown(ref)} is neither a [[relay]] name nor a relay address")
    try:
        return parse_relay(ref)
    except UsageError as exc:
        raise t.error("relays", str(exc)) from None


def _attach_ref(t: _Table, ref: str, peers: dict[str, PeerTarget]) -> str:
    if ref in peers:
        if not peers[ref].addrs:
            raise t.error("attach", f"{shown(ref)} has no direct address to attach a light peer to")
        return peers[ref].addrs[0]
    if not ref.startswith("/"):
        raise t.error("attach", f"{shown(ref)} is neither a [[peer]] name nor an address")
    return _direct_addr(t, "attach", ref)[0]


def _peer_ref(t: _Table, ref: str, peers: dict[str, PeerTarget]) -> str:
    if ref in peers:
        return peers[ref].peer_id
    try:
        return check_peer_id(ref)
    except UsageError:
        raise t.error("watch", f"{shown(ref)} is neither a [[peer]] name nor a peer id") from None


def from_options(relays: Iterable[str], peers: Iterable[str], topic: str | None, interval_s: float,
                 timeout_s: float | None, upgrade: bool, hold_s: float = 0.0) -> WatchConfig:
    """The short form: `--relay R… --peer P… [--topic T] --interval S`. A --peer is a direct address
    (…/p2p/ID), a relayed one (…/p2p-circuit/p2p/ID) or a bare peer id; every peer is also dialed
    through every --relay. --topic attaches the canaries' light peers to the first two peers given
    by direct address."""
    lines = [f"interval = {interval_s!r}"]
    if timeout_s is not None:
        lines.append(f"timeout = {timeout_s!r}")
    relay_list = list(relays)
    names: dict[str, str] = {}
    for text in relay_list:
        relay = parse_relay(text)
        names.setdefault(relay.addr, f"relay-{len(names) + 1}")
    for addr, name in names.items():
        lines += ["[[relay]]", f"name = {_toml(name)}", f"addr = {_toml(addr)}"]
    by_id: dict[str, dict[str, Any]] = {}
    for text in peers:
        if not text.startswith("/"):
            pid = check_peer_id(text, "--peer")
            if not names:
                raise UsageError(f"--peer {shown(text)}: a bare peer id is dialed through a relay: give --relay")
            entry = by_id.setdefault(pid, {"addrs": [], "relays": []})
            entry["relays"] += list(names.values())
        elif "/p2p-circuit" in text:
            from p2pdiag.targets import parse_target

            target = parse_target(text, [])
            entry = by_id.setdefault(target.peer_id, {"addrs": [], "relays": []})
            entry["relays"] += [r.addr for r in target.relays]
        else:
            relay = parse_relay(text)  # a direct address has the relay's shape: transport + /p2p/ID
            entry = by_id.setdefault(relay.peer_id, {"addrs": [], "relays": []})
            entry["addrs"].append(relay.addr)
            entry["relays"] += list(names.values())
    attach: list[str] = []
    for n, (pid, entry) in enumerate(by_id.items(), start=1):
        lines += ["[[peer]]", f"name = {_toml(f'peer-{n}')}", f"id = {_toml(pid)}",
                  f"addrs = [{', '.join(_toml(a) for a in dict.fromkeys(entry['addrs']))}]",
                  f"relays = [{', '.join(_toml(r) for r in dict.fromkeys(entry['relays']))}]",
                  f"upgrade = {'true' if upgrade and entry['relays'] else 'false'}"]
        if hold_s and entry["relays"]:
            lines.append(f"hold = {hold_s!r}")
        if entry["addrs"]:
            attach.append(f"peer-{n}")
    if topic is not None:
        if len(attach) < 2:
            raise UsageError("--topic needs two --peer given by direct address (…/tcp/…/p2p/ID): the canaries' "
                             "light peers attach to the first two")
        lines += ["[[gossipsub]]", f"topic = {_toml(topic)}", f"attach = [{_toml(attach[0])}, {_toml(attach[1])}]",
                  f"watch = [{', '.join(_toml(f'peer-{n}') for n in range(1, len(by_id) + 1))}]"]
    if not names and not by_id:
        raise UsageError("nothing to watch: give a CONFIG file, or --relay and/or --peer")
    try:
        return replace(loads("\n".join(lines) + "\n", "options"), source="options")
    except UsageError as exc:
        raise UsageError(str(exc).replace("config options: ", "")) from None


def _toml(text: str) -> str:
    """A TOML basic string."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
