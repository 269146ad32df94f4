"""Two real `p2pdiag watch --shard K/2` processes with one config of twelve relay targets (distinct
names over two real py-libp2p relays): together they list every target exactly once, neither is
empty, each probes only what it listed, and each tells its shard on /metrics
(`p2pdiag_watch_shard_info`)."""

from __future__ import annotations

import json
import sys
import urllib.request

import pytest
from support import prometheus as prom

pytestmark = pytest.mark.timeout(120)

TARGETS = 12


def config_text(relay_addrs: list[str]) -> str:
    text = "interval = 2\ntimeout = 1.5\n"
    for i in range(TARGETS):
        text += (f'\n[[relay]]\nname = "relay-{i:02d}"\naddr = "{relay_addrs[i % len(relay_addrs)]}"\n'
                 "reserve = false\n")
    return text


def events(trace) -> list[dict]:
    lines = trace.read_text().splitlines()
    return [json.loads(line) for line in lines[1:] if line.strip()]  # the first line is the header


def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "metrics", timeout=5) as r:
        return r.read().decode()


def test_two_shards_cover_every_target_once(spawn, py_relay, tmp_path):
    relays = [py_relay(ws=False), py_relay(ws=False)]
    config = tmp_path / "fleet.toml"
    config.write_text(config_text([r.addr("tcp") for r in relays]))
    names = {f"relay-{i:02d}" for i in range(TARGETS)}

    procs = {}
    for k in (1, 2):
        trace = tmp_path / f"shard-{k}.jsonl"
        procs[k] = (spawn([sys.executable, "-m", "p2pdiag", "watch", str(config), "--shard", f"{k}/2",
                           "--metrics", "127.0.0.1:0", "--trace", str(trace), "--duration", "6", "--linger", "1"],
                          f"watch shard {k}/2"), trace)
    listed: dict[int, set[str]] = {}
    for k, (proc, _trace) in procs.items():
        text = scrape(prom.watch_url(proc))
        shard_lines = [ln for ln in text.splitlines() if ln.startswith("p2pdiag_watch_shard_info{")]
        assert shard_lines == [f'p2pdiag_watch_shard_info{{count="2",index="{k}"}} 1.0'], shard_lines
    for k, (proc, trace) in procs.items():
        code = proc.wait(30)
        assert code == 0, (k, code, "".join(proc.stdout)[-2000:], "".join(proc.stderr)[-3000:])
        evs = events(trace)
        listed[k] = {e["target"] for e in evs if e.get("type") == "watch.target_listed"}
        probed = {e["target"] for e in evs if e.get("type") == "watch.probed"}
        assert listed[k], f"shard {k}/2 watches nothing"
        assert probed, f"shard {k}/2 probed nothing in 6 s"
        assert probed <= listed[k], (k, probed - listed[k])
    assert listed[1] | listed[2] == names
    assert not listed[1] & listed[2]
