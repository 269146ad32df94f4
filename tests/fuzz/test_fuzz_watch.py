"""Fuzzing what a /probe request or a peer can put into watch's metrics: only UsageError comes out of
`parse_target`, `transport_of` reads any text, and an observation's labels stay bounded, each with
work linear in the input (support/work.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support.work import assert_linear, cost

from p2pdiag.errors import UsageError
from p2pdiag.watch.http import MODULES, parse_target
from p2pdiag.watch.metrics import MAX_LABEL_CHARS, TRANSPORTS, WatchMetrics, transport_of
from p2pdiag.watch.model import AddrDial, Module, Observation, PeerFacts

PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
parse_target("peer", f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}")  # codec tables built once

parts = st.sampled_from(["ip4", "tcp", "udp", "ws", "wss", "tls", "quic-v1", "webrtc", "webrtc-direct",
                         "p2p-circuit", "p2p", "webtransport", "certhash", "dns4", "1.2.3.4", "4001", PEER_ID,
                         RELAY_ID, "", "%", "\x00"])
addr_text = st.lists(parts, max_size=20).map(lambda ps: "/" + "/".join(ps))
anything = st.one_of(addr_text, st.text(max_size=500))


@given(st.one_of(st.sampled_from(MODULES), st.text(max_size=20)), anything)
def test_parse_target_raises_only_usage_errors(module, text):
    c = cost(lambda: parse_target(module, text), allowed=(UsageError,))
    if c.raised is None:
        assert module in MODULES and module != Module.GOSSIPSUB.value
    assert_linear(c, min(len(text), 1024), base_lines=20_000, lines_per_unit=40, base_bytes=8 << 20)


@given(anything)
def test_transport_of_reads_any_text(text):
    c = cost(lambda: transport_of(text))
    assert transport_of(text) in TRANSPORTS
    assert_linear(c, len(text), base_lines=200, lines_per_unit=8)


@given(st.lists(st.text(max_size=3000), max_size=80), st.text(max_size=3000))
def test_any_announced_addresses_and_agent_give_bounded_labels(addrs, agent):
    dials = tuple(AddrDial(a, transport_of(a), None, False, False, False) for a in addrs)
    obs = Observation(module=Module.PEER, target="p", ok=False, started_unix_s=0.0, duration_s=0.0,
                      peer=PeerFacts(agent=agent, listen_addrs=tuple(addrs), identified=True, dials=dials))
    m = WatchMetrics()
    m.observe(obs)
    for fam in m.registry.collect():
        for s in fam.samples:
            assert all(len(v) <= MAX_LABEL_CHARS for v in s.labels.values()), s
