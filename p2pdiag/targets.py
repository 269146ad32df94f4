"""Parsing what the user typed: relay addresses, dial targets and peer ids. Pure, no libp2p."""

from __future__ import annotations

from dataclasses import dataclass

from p2pdiag.errors import UsageError
from p2pdiag.trace.events import DialMethod

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

# Lengths checked before anything is decoded: base58 decoding (here and in the multiaddr package)
# is quadratic in the length, and 110,000 characters took minutes. A peer id is a multihash of at
# most 38 bytes (an inlined secp256k1 key: 53 base58 characters; 12D3KooW… 52; Qm… 46; as a CIDv1 in
# base32 about 62), so 128 characters is generous. A multiaddr with DNS names, certhashes, a relay
# and a /p2p-circuit part stays far below 1024.
MAX_PEER_ID_CHARS = 128
MAX_MULTIADDR_CHARS = 1024
_SHOWN_CHARS = 80  # how much of a bad input an error message repeats


def shown(text: str) -> str:
    """TEXT quoted for an error message, cut to a readable length (the input may be megabytes)."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}… ({len(text)} characters)"


@dataclass(frozen=True, slots=True)
class RelayAddr:
    addr: str  # the whole address, with /p2p/<relay id>
    peer_id: str
    transport: str  # "tcp", "ws" or "wss"


def _b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"{c!r} is not a base58 character")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def check_peer_id(text: str, what: str = "peer id") -> str:
    """A base58 libp2p peer id (12D3KooW… for Ed25519, Qm… for RSA); UsageError if not."""
    if not text:
        raise UsageError(f"{what} is empty")
    if len(text) > MAX_PEER_ID_CHARS:
        raise UsageError(f"{what} {shown(text)} is not a peer id: longer than {MAX_PEER_ID_CHARS} characters "
                         "(peer ids look like 12D3KooW… or Qm…)")
    try:
        raw = _b58decode(text)
    except ValueError as exc:
        raise UsageError(f"{what} {shown(text)} is not a peer id: {exc}") from None
    if len(raw) < 2:
        raise UsageError(f"{what} {shown(text)} is not a peer id: too short")
    code, length = raw[0], raw[1]
    if code not in (0x00, 0x12) or length != len(raw) - 2:
        raise UsageError(
            f"{what} {shown(text)} is not a peer id: not an identity or sha2-256 multihash "
            "(peer ids look like 12D3KooW… or Qm…)"
        )
    if code == 0x12 and length != 32:
        raise UsageError(f"{what} {shown(text)} is not a peer id: a sha2-256 digest has 32 bytes, not {length}")
    return text


def _parts(text: str, what: str) -> list[tuple[str, str | None]]:
    from multiaddr import Multiaddr

    if not text.startswith("/"):
        raise UsageError(f"{what} {shown(text)} is not a multiaddr (it should start with '/', like "
                         "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW…)")
    if len(text) > MAX_MULTIADDR_CHARS:
        raise UsageError(f"{what} {shown(text)} is not a plausible multiaddr: longer than {MAX_MULTIADDR_CHARS} "
                         "characters")
    for part in text.replace("/ipfs/", "/p2p/").split("/p2p/")[1:]:
        peer_id = part.split("/", 1)[0]
        if len(peer_id) > MAX_PEER_ID_CHARS:
            raise UsageError(f"{what}: /p2p/{shown(peer_id)} is not a peer id: longer than {MAX_PEER_ID_CHARS} "
                             "characters")
    try:
        ma = Multiaddr(text)
        return [(p.name, v) for p, v in ma.items()]
    except Exception as exc:  # noqa: BLE001  (the multiaddr package raises many types: all bad input here)
        raise UsageError(f"{what} {shown(text)} is not a valid multiaddr: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    """The multiaddr package repeats the whole input in its messages, sometimes over lines."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 2 * _SHOWN_CHARS else text[: 2 * _SHOWN_CHARS] + "…"


def _relay_from_parts(parts: list[tuple[str, str | None]], text: str) -> RelayAddr:
    names = [n for n, _ in parts]
    if not parts or names[-1] != "p2p":
        raise UsageError(f"relay address {shown(text)} must end with /p2p/<relay peer id>")
    if "tcp" not in names:
        raise UsageError(f"relay address {shown(text)}: p2pdiag reaches relays over TCP or WebSocket (/tcp/…[/ws])")
    if "p2p-circuit" in names:
        raise UsageError(f"relay address {shown(text)} is itself a /p2p-circuit address; give the relay's own address")
    transport = "wss" if ("wss" in names or "tls" in names) else ("ws" if "ws" in names else "tcp")
    peer_id = check_peer_id(str(parts[-1][1]), "relay peer id")
    addr = "".join(f"/{n}" + (f"/{v}" if v is not None else "") for n, v in parts)
    return RelayAddr(addr=addr, peer_id=peer_id, transport=transport)


def parse_relay(text: str) -> RelayAddr:
    return _relay_from_parts(_parts(text, "relay address"), text)


@dataclass(frozen=True, slots=True)
class DialTarget:
    peer_id: str
    relays: tuple[RelayAddr, ...]
    method: DialMethod
    webrtc: bool


def parse_target(text: str, relays: list[str]) -> DialTarget:
    if not text.startswith("/"):
        peer_id = check_peer_id(text, "target peer id")
        if not relays:
            raise UsageError("dialing by peer id needs at least one --relay /ip4/…/tcp/…/p2p/RELAY_ID")
        return DialTarget(peer_id, tuple(parse_relay(r) for r in relays), DialMethod.PEER_ID, webrtc=True)
    parts = _parts(text, "target")
    names = [n for n, _ in parts]
    if "p2p-circuit" not in names:
        raise UsageError(
            f"target {shown(text)} is not a relayed address; it should look like "
            "<relay addr>/p2p/RELAY_ID/p2p-circuit[/webrtc]/p2p/PEER_ID, or give a peer id and --relay"
        )
    if relays:
        raise UsageError("give either a full /p2p-circuit target or a peer id with --relay, not both")
    cut = names.index("p2p-circuit")
    relay = _relay_from_parts(parts[:cut], text)
    rest = parts[cut + 1 :]
    rest_names = [n for n, _ in rest]
    if rest_names not in (["p2p"], ["webrtc", "p2p"]):
        raise UsageError(
            f"target {shown(text)}: after /p2p-circuit expected /p2p/PEER_ID or /webrtc/p2p/PEER_ID, "
            f"got /{'/'.join(rest_names)}"
        )
    peer_id = check_peer_id(str(rest[-1][1]), "target peer id")
    return DialTarget(peer_id, (relay,), DialMethod.MULTIADDR, webrtc="webrtc" in rest_names)
