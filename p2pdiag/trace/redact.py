"""Redaction: a trace with its IP addresses, peer ids and TURN credentials replaced, for a support
ticket, whose verdict is the verdict of the original (docs/redaction.md).

A `Redactor` is one run's mapping: the same address or peer id always gets the same placeholder,
in the order they are first met, so a trace redacted event by event (a live run's `--trace`) and
one redacted whole (`analyze --redact`) read the same. It is a pure function of the events and the
redactor's seed; `redact(trace)` is the whole-trace form.

What diagnosis reads must survive, so placeholders are chosen for it:

- An IP address stays in its block (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, the
  benchmarking and documentation ranges, fc00::/7, fe80::/10 ...): `network.is_private` and
  `reservation._private_only` judge a placeholder as they judged the original, and Python's
  `ipaddress` gives it the same class. Addresses in no special block are public, and get public
  placeholders (11.0.0.0/8, 2a00::/16). Loopback,
  unspecified, multicast and broadcast addresses identify no one and stay. Ports stay: the
  symmetric-NAT judgement compares srflx ports.
- A peer id becomes the peer id of a throwaway Ed25519 key, so it is still a peer id where
  diagnosis decodes one (the reservation voucher's checks compare bytes). A voucher is re-signed
  with the throwaway key of its signer, over the same payload with its peer ids replaced, keeping
  which checks pass: a valid signature stays valid (for the domain it was valid for), a bad one
  stays bad, a signer that is not the relay stays another peer, a malformed envelope or payload
  stays malformed.
- TURN usernames and credentials go: header options that name them are dropped, and a URL's
  `user:pass@` is cut.

Multiaddrs, error texts and candidate strings carry addresses and peer ids too: every string in an
event and in the header's options is scanned for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from p2pdiag.trace.events import Event, ReservationAccepted
from p2pdiag.trace.file import Header, Trace
from p2pdiag.wire import envelope, pb

# --- IP addresses --------------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Identify no one: kept as they are.
KEPT = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "ff00::/8",
))
# Special-purpose blocks (RFC 6890 and the diagnosis's own): a placeholder stays in the original's block.
BLOCKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # private (RFC 1918)
    "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
    "169.254.0.0/16",  # link-local
    "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4",  # IETF, 6to4 relay, benchmarking, reserved
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",  # documentation (the lab's "public" network)
    "fc00::/7", "fe80::/10",  # unique local, link-local
    "2001:db8::/32", "2001::/23", "2002::/16", "100::/64",  # documentation, IETF (Teredo), 6to4, discard
))
PUBLIC = {4: ipaddress.ip_network("11.0.0.0/8"), 6: ipaddress.ip_network("2a00::/16")}
# IPv6 that carries an IPv4 address: the IPv4 part is redacted, the prefix kept
EMBEDDING = tuple(ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96"))

_V4 = r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\d)"  # the first four of 1.2.3.4.5: tcpdump writes ports so
# at least two colons; what ipaddress refuses (a time, a fingerprint, a MAC address) is left alone
_V6 = r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![\w:])"

PLACEHOLDER_TRIES = 4096


def _class(ip: IPAddress) -> tuple[bool, ...]:
    return (ip.is_private, ip.is_global, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved,
            ip.is_unspecified, ip.version == 6 and ip.is_site_local)


# --- peer ids -----------------------------------------------------------------------------------

_B58 = "1-9A-HJ-NP-Za-km-z"
_PEER_ID = (rf"(?<![{_B58}])(?:12D3KooW[{_B58}]{{44}}|16Uiu2HA[{_B58}]{{45}}|Qm[{_B58}]{{44}})(?![{_B58}])"
            r"|(?<=/p2p/)[A-Za-z0-9]{20,}|(?<=/ipfs/)[A-Za-z0-9]{20,}")
_TEXT = re.compile(rf"(?P<peer>{_PEER_ID})|(?P<v6>{_V6})|(?P<v4>{_V4})")
_BASE58 = re.compile(rf"[{_B58}]{{20,}}")

# --- TURN credentials ---------------------------------------------------------------------------

# bounded: an unbounded run from every "turn:" made a line of them quadratic (40,000 took 45 s)
_URL_USERINFO = re.compile(r"\b(turns?|stuns?):(//)?[^@\s/?\"',;]{1,256}@")
_SECRET_OPTION = re.compile(r"user|credential|password|secret", re.IGNORECASE)

REDACTED = "redacted"  # a voucher that was not hex


class Redactor:
    """One run's placeholders. SEED makes the throwaway peer keys reproducible (tests); by default
    they are random, so a placeholder says nothing about the peer id it replaces."""

    def __init__(self, seed: bytes | None = None) -> None:
        self._seed = os.urandom(32) if seed is None else seed
        self._ips: dict[IPAddress, IPAddress] = {}
        self._ips_shown: dict[str, str] = {}  # an address-like token as written -> as shown (a line may repeat one)
        self._used: dict[Network, int] = {}
        self._peers: dict[str, str] = {}
        self._keys: dict[str, tuple[ed25519.Ed25519PrivateKey, bytes]] = {}  # placeholder -> its key, its PublicKey
        self._odd_peers: list[str] = []  # typed peer ids of no usual shape: replaced wherever they occur

    # --- values ---------------------------------------------------------------------------------

    def ip(self, address: IPAddress) -> IPAddress:
        if any(address.version == n.version and address in n for n in KEPT):
            return address
        found = self._ips.get(address)
        if found is not None:
            return found
        embedding = next((n for n in EMBEDDING if address.version == 6 and address in n), None)
        if embedding is not None:
            inner = self.ip(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
            found = ipaddress.IPv6Address(int(embedding.network_address) | int(inner))
        else:
            found = self._placeholder(address)
        self._ips[address] = found
        return found

    def _placeholder(self, address: IPAddress) -> IPAddress:
        """The next address of ADDRESS's block that Python's ipaddress classes as it does (a block such as
        192.0.0.0/24 holds smaller ranges of other classes); failing that, of the public pool."""
        block = next((n for n in BLOCKS if address.version == n.version and address in n), PUBLIC[address.version])
        wanted = _class(address)
        for pool in dict.fromkeys((block, PUBLIC[address.version])):
            n = self._used.get(pool, 0)
            for _ in range(PLACEHOLDER_TRIES):
                n += 1
                candidate = pool.network_address + (n - 1) % (pool.num_addresses - 2) + 1
                if candidate != address and _class(candidate) == wanted:
                    self._used[pool] = n
                    return candidate
        # no address of its class in reach (never seen): its block, the host part from a hash
        digest = int.from_bytes(hashlib.sha256(self._seed + address.packed).digest()[:8])
        return block.network_address + digest % block.num_addresses

    def peer_id(self, text: str) -> str:
        """The placeholder of a peer id: the id of a throwaway Ed25519 key, the same for the same id."""
        found = self._peers.get(text)
        if found is None:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(self._seed + text.encode()).digest())
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            found = envelope.b58encode(envelope.PublicKey(envelope.KeyType.ED25519, public).peer_id())
            self._peers[text] = found
            self._keys[found] = (key, pb.field_varint(1, envelope.KeyType.ED25519) + pb.field_bytes(2, public))
        return found

    def text(self, text: str) -> str:
        """TEXT with every address, peer id and URL credential in it replaced."""
        text = _URL_USERINFO.sub(lambda m: f"{m[1]}:{m[2] or ''}", text)
        text = _TEXT.sub(self._replace, text)
        for odd in self._odd_peers:
            text = text.replace(odd, self._peers[odd])
        return text

    def _replace(self, m: re.Match[str]) -> str:
        if m["peer"]:
            return self.peer_id(m["peer"])
        token = m[0]
        found = self._ips_shown.get(token)
        if found is None:
            found = self._ips_shown[token] = self._address(token)
        return found

    def _address(self, token: str) -> str:
        for candidate in (token, token.rstrip(".:")):  # without the end of a sentence, a port's colon
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                continue
            return str(self.ip(address)) + token[len(candidate):]
        return token

    def _typed_peer_id(self, value: str) -> str:
        if not _BASE58.fullmatch(value):
            return self.text(value)
        if value not in self._peers and not re.fullmatch(_PEER_ID, value):
            self._odd_peers.append(value)
        return self.peer_id(value)

    def voucher(self, voucher_hex: str) -> str:
        """The voucher re-signed with its signer's throwaway key, every check passing or failing as before."""
        if not voucher_hex:
            return voucher_hex
        try:
            raw = bytes.fromhex(voucher_hex)
        except ValueError:
            return REDACTED  # still not hex: diagnosis cannot check it, as before
        try:
            env = envelope.Envelope.decode(raw)
        except pb.MalformedMessage:
            return b"\x0a".hex()  # a truncated field: still not an envelope
        signer = self.peer_id(envelope.peer_id_text(env.public_key.peer_id()))
        key, key_proto = self._keys[signer]
        domain: str | None = None  # the domain the signature verifies for, if any
        for d in (envelope.DOMAIN, *envelope.OTHER_DOMAINS):
            result, _ = envelope.verify(env.public_key, env.signed_bytes(d), env.signature)
            if result is envelope.Signature.VALID:
                domain = d
                break
            if result is envelope.Signature.UNSUPPORTED:
                break  # cannot be kept: the throwaway key is Ed25519 (docs/redaction.md)
        try:
            v = envelope.Voucher.decode(env.payload)
        except pb.MalformedMessage:
            payload = b"\x0a"  # still not a Voucher
        else:
            payload = b"".join((
                pb.field_bytes(1, self._peer_bytes(v.relay)) if v.relay else b"",
                pb.field_bytes(2, self._peer_bytes(v.peer)) if v.peer else b"",
                pb.field_varint(3, v.expiration) if v.expiration is not None else b"",
            ))
        signature = key.sign(envelope.signed_bytes(domain or envelope.DOMAIN, env.payload_type, payload))
        if domain is None:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])  # verifies for no domain, as before
        return (pb.field_bytes(1, key_proto) + pb.field_bytes(2, env.payload_type) + pb.field_bytes(3, payload)
                + pb.field_bytes(5, signature)).hex()

    def _peer_bytes(self, raw: bytes) -> bytes:
        return envelope.peer_id_bytes(self.peer_id(envelope.peer_id_text(raw)))

    # --- events, header, trace ------------------------------------------------------------------

    def event(self, event: Event) -> Event:
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(event):
            value = getattr(event, f.name)
            if isinstance(event, ReservationAccepted) and f.name == "voucher_hex":
                new = self.voucher(value)
            elif f.name.endswith("peer_id") and isinstance(value, str):
                new = self._typed_peer_id(value)
            else:
                new = self._value(value)
            if new != value:
                changes[f.name] = new
        return dataclasses.replace(event, **changes) if changes else event

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, tuple):
            return tuple(self._value(v) for v in value)
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, dict):
            return {k: self._value(v) for k, v in value.items() if not _SECRET_OPTION.search(str(k))}
        return value

    def header(self, header: Header) -> Header:
        return dataclasses.replace(header, options=self._value(header.options), redacted=True)

    def trace(self, trace: Trace) -> Trace:
        header = self.header(trace.header)
        return dataclasses.replace(trace, header=header, events=tuple(self.event(e) for e in trace.events))


def redact(trace: Trace, seed: bytes | None = None) -> Trace:
    """TRACE with its addresses, peer ids and TURN credentials replaced (a fresh Redactor)."""
    return Redactor(seed).trace(trace)
