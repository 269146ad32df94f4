"""Fuzzing what the user types as an address or a peer id: only UsageError may come out, quickly."""

from __future__ import annotations

import time

from hypothesis import example, given
from hypothesis import strategies as st

from p2pdiag.errors import UsageError
from p2pdiag.targets import check_peer_id, parse_relay, parse_target

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
MAX_S = 0.5  # far above what a parse of anything the caps let through costs

names = st.sampled_from(["ip4", "ip6", "tcp", "udp", "ws", "wss", "tls", "dns", "dns4", "dns6", "dnsaddr",
                         "p2p", "ipfs", "p2p-circuit", "webrtc", "webrtc-direct", "quic-v1", "certhash",
                         "sni", "unix", "x", ""])
values = st.one_of(
    st.sampled_from(["127.0.0.1", "::1", "4001", "0", "65536", "-1", RELAY_ID, PEER_ID, "Qm", "localhost",
                     "1.2.3.4.5", "%", "uEiA", "/"]),
    st.text(alphabet=B58, max_size=200),
    st.text(max_size=40),
)
components = st.lists(st.tuples(names, st.one_of(st.none(), values)), max_size=12)
multiaddr_text = components.map(lambda cs: "".join(f"/{n}" + (f"/{v}" if v is not None else "") for n, v in cs))
anything = st.one_of(multiaddr_text, st.text(max_size=300), st.text(alphabet=B58, max_size=3000))


def _only_usage_error(call) -> None:
    began = time.perf_counter()
    try:
        call()
    except UsageError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1200, str(exc)[:2000]
    assert time.perf_counter() - began < MAX_S


@given(anything, st.lists(anything, max_size=3))
@example(f"/ip4/127.0.0.1/tcp/9/p2p/{'z' * 110_000}/p2p-circuit/p2p/Q", [])
@example(PEER_ID, [f"/ip4/127.0.0.1/tcp/9/p2p/{'1' * 5000}"])
def test_parse_target(text, relays):
    _only_usage_error(lambda: parse_target(text, relays))


@given(anything)
@example("/ip4/127.0.0.1/tcp/4001/ws/p2p/" + RELAY_ID)
def test_parse_relay(text):
    _only_usage_error(lambda: parse_relay(text))


@given(st.one_of(st.text(alphabet=B58, max_size=5000), st.text(max_size=200)))
def test_check_peer_id(text):
    _only_usage_error(lambda: check_peer_id(text))
