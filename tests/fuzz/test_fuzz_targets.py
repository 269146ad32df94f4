"""Fuzzing what the user types as an address or a peer id: only UsageError may come out, quickly."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from support.work import assert_linear, cost

from p2pdiag.errors import UsageError
from p2pdiag.targets import MAX_MULTIADDR_CHARS, check_peer_id, parse_relay, parse_target

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Lines executed by one parse: a constant plus so many per character typed (support/work.py). The caps
# refuse a long input before decoding, so a huge one costs no more than one at the cap.
BASE_LINES = 20_000
LINES_PER_CHAR = 40
BASE_BYTES = 8 << 20  # a protocol's first use may import a module (sni: idna's tables)

# The first parse imports and builds the multiaddr codec's tables; that is not the parse's own work.
parse_target(f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}", [])
parse_relay(f"/ip4/127.0.0.1/tcp/4001/ws/p2p/{RELAY_ID}")

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


def capped(*texts: str) -> int:
    """The characters a parse may read: each address up to the cap, beyond which it is refused unread."""
    return sum(min(len(t), MAX_MULTIADDR_CHARS) for t in texts)


def _only_usage_error(call, size: int) -> None:
    c = cost(call, (UsageError,))
    if c.raised is not None:
        assert "\n" not in str(c.raised) and len(str(c.raised)) < 1200, str(c.raised)[:2000]
    assert_linear(c, size, base_lines=BASE_LINES, lines_per_unit=LINES_PER_CHAR, base_bytes=BASE_BYTES,
                  what="characters")


@given(anything, st.lists(anything, max_size=3))
@example(f"/ip4/127.0.0.1/tcp/9/p2p/{'z' * 110_000}/p2p-circuit/p2p/Q", [])
@example(PEER_ID, [f"/ip4/127.0.0.1/tcp/9/p2p/{'1' * 5000}"])
def test_parse_target(text, relays):
    _only_usage_error(lambda: parse_target(text, relays), capped(text, *relays))


@given(anything)
@example("/ip4/127.0.0.1/tcp/4001/ws/p2p/" + RELAY_ID)
def test_parse_relay(text):
    _only_usage_error(lambda: parse_relay(text), capped(text))


@given(st.one_of(st.text(alphabet=B58, max_size=5000), st.text(max_size=200)))
def test_check_peer_id(text):
    _only_usage_error(lambda: check_peer_id(text), capped(text))
