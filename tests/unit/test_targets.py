import pytest
from support.work import cost

from p2pdiag.errors import UsageError
from p2pdiag.targets import check_peer_id, parse_relay, parse_target
from p2pdiag.trace.events import DialMethod

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
RELAY = f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}"


def test_full_circuit_address():
    t = parse_target(f"{RELAY}/p2p-circuit/webrtc/p2p/{PEER_ID}", [])
    assert t.peer_id == PEER_ID and t.webrtc and t.method is DialMethod.MULTIADDR
    assert t.relays[0].addr == RELAY and t.relays[0].peer_id == RELAY_ID and t.relays[0].transport == "tcp"
    plain = parse_target(f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", [])
    assert not plain.webrtc


def test_peer_id_with_relays():
    ws = f"/ip4/127.0.0.1/tcp/4002/ws/p2p/{RELAY_ID}"
    t = parse_target(PEER_ID, [RELAY, ws])
    assert t.method is DialMethod.PEER_ID
    assert [r.transport for r in t.relays] == ["tcp", "ws"]


def test_legacy_rsa_peer_id_is_accepted():
    assert check_peer_id("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN")


@pytest.mark.parametrize(
    ("target", "relays", "message"),
    [
        ("foo", [RELAY], "is not a peer id"),
        ("QmFoo", [RELAY], "is not a peer id"),
        ("12D3KooW0OIl", [RELAY], "not a base58 character"),
        (PEER_ID, [], "needs at least one --relay"),
        ("/ip4/1.2.3/tcp/1", [], "not a valid multiaddr"),
        (RELAY, [], "not a relayed address"),
        (f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", [RELAY], "not both"),
        (f"{RELAY}/p2p-circuit/p2p/nope", [], "not a valid multiaddr"),
        (f"/ip4/127.0.0.1/tcp/4001/p2p-circuit/p2p/{PEER_ID}", [], "must end with /p2p/<relay peer id>"),
        (f"{RELAY}/p2p-circuit/tcp/1/p2p/{PEER_ID}", [], "after /p2p-circuit expected"),
        (PEER_ID, ["ip4/127.0.0.1"], "should start with '/'"),
        (PEER_ID, [f"/ip4/127.0.0.1/udp/1/p2p/{RELAY_ID}"], "over TCP or WebSocket"),
    ],
)
def test_bad_input_is_a_usage_error(target, relays, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_target(target, relays)


def test_relay_address_must_not_be_a_circuit():
    with pytest.raises(UsageError, match="itself a /p2p-circuit"):
        parse_relay(f"{RELAY}/p2p-circuit/p2p/{PEER_ID}/p2p/{RELAY_ID}")


@pytest.mark.parametrize("text", [
    f"/ip4/127.0.0.1/tcp/9/p2p/{'z' * 110_000}/p2p-circuit/p2p/Q",
    f"/ip4/127.0.0.1/tcp/9/p2p/{'z' * 200}/p2p-circuit/p2p/{PEER_ID}",
    f"{RELAY}/p2p-circuit/p2p/{'z' * 5_000_000}",
    f"/ipfs/{'1' * 500}",
    "z" * 1_000_000,
])
def test_long_inputs_are_refused_before_decoding(text):
    """Issue 10: base58 decoding is quadratic; the lengths are checked first, and the message is short.
    The work done is the same for five million characters as for a valid address."""
    relays = [RELAY] if not text.startswith("/") else []
    parse_target(f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", [])  # the first parse builds the codec's tables
    valid = cost(lambda: parse_target(f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", []))
    c = cost(lambda: parse_target(text, relays), (UsageError,))
    assert isinstance(c.raised, UsageError) and "longer than" in str(c.raised), c.raised
    assert c.lines <= 2 * valid.lines + 200, (c.lines, valid.lines)
    assert len(str(c.raised)) < 400


def test_limits_admit_real_peer_ids_and_addresses():
    from p2pdiag.targets import MAX_MULTIADDR_CHARS, MAX_PEER_ID_CHARS

    secp256k1 = "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY"  # the longest base58 form: 53
    assert len(secp256k1) <= MAX_PEER_ID_CHARS and check_peer_id(secp256k1)
    dns = f"/dns4/{'a' * 63}.{'b' * 63}.{'c' * 63}.example/tcp/443/wss/p2p/{RELAY_ID}"
    target = f"{dns}/p2p-circuit/webrtc/p2p/{PEER_ID}"
    assert len(target) < MAX_MULTIADDR_CHARS
    assert parse_target(target, []).relays[0].transport == "wss"
