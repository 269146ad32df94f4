"""The reservation voucher: a libp2p signed envelope, parsed and checked with no I/O and no libp2p.

Circuit Relay v2 (libp2p/specs relay/circuit-v2.md, "Reservation Vouchers") makes the voucher a
signed envelope (libp2p/specs RFC 0002, record/envelope-rfc0002.md) with domain
`libp2p-relay-rsvp` and payload type 0x0302 over `Voucher{relay, peer, expiration}`:

    message Envelope { PublicKey public_key = 1; bytes payload_type = 2; bytes payload = 3;
                       bytes signature = 5; }
    signed bytes = uvarint(len(domain)) domain uvarint(len(type)) type uvarint(len(payload)) payload

go-, js- and py-libp2p write the payload type as the two raw bytes 03 02, not as a varint.

`check_voucher` runs every check and says which failed, so a trace from a support ticket gives
the same answer offline (`p2pdiag analyze`) as the live run did. Signatures are verified with the
`cryptography` package (Ed25519, RSA, ECDSA P-256/384/521 and secp256k1); it is imported only
when a signature is checked.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from p2pdiag.targets import _b58decode
from p2pdiag.wire import pb

DOMAIN = "libp2p-relay-rsvp"
PAYLOAD_TYPE = b"\x03\x02"
# Domains other libp2p envelopes use: a voucher that verifies under one was signed for the wrong purpose.
OTHER_DOMAINS = ("libp2p-peer-record", "libp2p-routing-state", "")
MAX_INLINE_KEY_BYTES = 42  # libp2p/specs peer-ids: longer serialized keys are hashed into the id
EXPIRATION_TOLERANCE_S = 1  # py-libp2p's own check allows one second of rounding

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class KeyType(enum.IntEnum):
    """libp2p/specs peer-ids/peer-ids.md, `KeyType`."""

    RSA = 0
    ED25519 = 1
    SECP256K1 = 2
    ECDSA = 3


def b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


def peer_id_text(raw: bytes) -> str:
    return b58encode(raw) if raw else "<empty>"


def peer_id_bytes(text: str) -> bytes:
    """A base58 peer id as its multihash bytes; ValueError if it is not base58."""
    return _b58decode(text)


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_type: int
    data: bytes

    @classmethod
    def decode(cls, buf: bytes) -> PublicKey:
        f = pb.decode_fields(buf)
        data = pb.last_bytes(f, 2)
        if data is None:
            raise pb.MalformedMessage("PublicKey without Data")
        # proto3 encoders (py-libp2p's) leave out Type when it is RSA, the default 0
        return cls(pb.last_int(f, 1) or KeyType.RSA, data)

    def type_name(self) -> str:
        try:
            return KeyType(self.key_type).name
        except ValueError:
            return f"unknown key type {self.key_type}"

    def peer_id(self) -> bytes:
        """The peer id (multihash) of this key: identity up to 42 bytes, sha2-256 above.

        Hashed is the deterministic encoding with Type always written (libp2p/specs peer-ids),
        not the bytes received: a proto3 encoder leaves out Type 0 (RSA).
        """
        canonical = pb.field_varint(1, self.key_type) + pb.field_bytes(2, self.data)
        if len(canonical) <= MAX_INLINE_KEY_BYTES:
            return bytes([0x00, len(canonical)]) + canonical
        return bytes([0x12, 0x20]) + hashlib.sha256(canonical).digest()


@dataclass(frozen=True, slots=True)
class Envelope:
    public_key: PublicKey
    payload_type: bytes
    payload: bytes
    signature: bytes

    @classmethod
    def decode(cls, buf: bytes) -> Envelope:
        f = pb.decode_fields(buf)
        key = pb.last_bytes(f, 1)
        if key is None:
            raise pb.MalformedMessage("envelope without public_key (field 1)")
        return cls(
            public_key=PublicKey.decode(key),
            payload_type=pb.last_bytes(f, 2) or b"",
            payload=pb.last_bytes(f, 3) or b"",
            signature=pb.last_bytes(f, 5) or b"",
        )

    def signed_bytes(self, domain: str) -> bytes:
        return signed_bytes(domain, self.payload_type, self.payload)


def signed_bytes(domain: str, payload_type: bytes, payload: bytes) -> bytes:
    return b"".join(pb.length_prefixed(part) for part in (domain.encode(), payload_type, payload))


@dataclass(frozen=True, slots=True)
class Voucher:
    relay: bytes
    peer: bytes
    expiration: int | None

    @classmethod
    def decode(cls, buf: bytes) -> Voucher:
        f = pb.decode_fields(buf)
        return cls(relay=pb.last_bytes(f, 1) or b"", peer=pb.last_bytes(f, 2) or b"", expiration=pb.last_int(f, 3))


class Signature(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNSUPPORTED = "unsupported"  # a key type (or a library) p2pdiag cannot check


def verify(key: PublicKey, message: bytes, signature: bytes) -> tuple[Signature, str]:
    """Verify `signature` over `message` as libp2p does for this key type; (result, why)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    except ImportError:
        return Signature.UNSUPPORTED, "the Python package 'cryptography' is not installed"
    try:
        if key.key_type == KeyType.ED25519:
            ed25519.Ed25519PublicKey.from_public_bytes(key.data).verify(signature, message)
        elif key.key_type == KeyType.RSA:  # PKIX DER key, PKCS#1 v1.5 over SHA-256
            rsa_key = serialization.load_der_public_key(key.data)
            if not isinstance(rsa_key, rsa.RSAPublicKey):
                return Signature.INVALID, "an RSA key whose Data is not an RSA public key"
            rsa_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif key.key_type == KeyType.ECDSA:  # PKIX DER key, DER signature over SHA-256
            ec_key = serialization.load_der_public_key(key.data)
            if not isinstance(ec_key, ec.EllipticCurvePublicKey):
                return Signature.INVALID, "an ECDSA key whose Data is not an elliptic-curve public key"
            ec_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif key.key_type == KeyType.SECP256K1:  # compressed point, DER signature over SHA-256
            point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), key.data)
            point.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            return Signature.UNSUPPORTED, f"unsupported key type {key.key_type}"
    except InvalidSignature:
        return Signature.INVALID, f"the {key.type_name()} signature does not verify"
    except (ValueError, TypeError) as exc:  # a key or signature that does not even parse
        return Signature.INVALID, f"the {key.type_name()} key or signature is malformed ({exc})"
    return Signature.VALID, f"{key.type_name()} signature verifies"


class Check(enum.Enum):
    """The voucher checks, in the order they run."""

    ENVELOPE = "envelope"  # parses as a signed envelope with a public key
    PAYLOAD_TYPE = "payload_type"  # 03 02
    SIGNATURE = "signature"  # verifies under the envelope's key...
    DOMAIN = "domain"  # ...for domain libp2p-relay-rsvp, not another
    SIGNER = "signer"  # the key is the relay's own
    PAYLOAD = "payload"  # parses as Voucher{relay, peer, expiration}
    RELAY = "relay"  # Voucher.relay is the relay's peer id
    PEER = "peer"  # Voucher.peer is the peer that reserved
    EXPIRATION = "expiration"  # equals Reservation.expire and lies in the future


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: Check
    ok: bool | None  # None: could not be checked (an earlier check failed, or the key type)
    detail: str


@dataclass(frozen=True, slots=True)
class VoucherReport:
    results: tuple[CheckResult, ...]
    key_type: str | None = None
    expiration: int | None = None

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.ok is False)

    @property
    def unchecked(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.ok is None)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unchecked

    def result(self, check: Check) -> CheckResult | None:
        return next((r for r in self.results if r.check is check), None)


def check_voucher(
    voucher: bytes, *, relay_peer_id: bytes, peer_id: bytes, expire: int | None, now_unix_s: float | None
) -> VoucherReport:
    """Every check of a reservation voucher, each with a verdict and a reason.

    `relay_peer_id` and `peer_id` are multihash bytes; `expire` is Reservation.expire from the
    same reply; `now_unix_s` is when the reply arrived (None: skip the "not yet expired" part).
    """
    out: list[CheckResult] = []

    def add(check: Check, ok: bool | None, detail: str) -> None:
        out.append(CheckResult(check, ok, detail))

    def rest_unchecked(after: Check, why: str) -> VoucherReport:
        checks = list(Check)
        for c in checks[checks.index(after) + 1 :]:
            add(c, None, why)
        return VoucherReport(tuple(out))

    try:
        env = Envelope.decode(voucher)
    except pb.MalformedMessage as exc:
        add(Check.ENVELOPE, False, f"not a signed envelope: {exc}")
        return rest_unchecked(Check.ENVELOPE, "the envelope did not parse")
    key = env.public_key
    add(Check.ENVELOPE, True, f"{len(voucher)} B envelope, {key.type_name()} key")

    if env.payload_type == PAYLOAD_TYPE:
        add(Check.PAYLOAD_TYPE, True, "03 02")
    elif env.payload_type == pb.encode_varint(0x0302):
        add(Check.PAYLOAD_TYPE, False, f"{env.payload_type.hex(' ')}: 0x0302 written as a varint; "
            "libp2p implementations write the raw bytes 03 02")
    else:
        add(Check.PAYLOAD_TYPE, False, f"{env.payload_type.hex(' ') or 'empty'}, expected 03 02")

    result, why = verify(key, env.signed_bytes(DOMAIN), env.signature)
    if result is Signature.VALID:
        add(Check.SIGNATURE, True, why)
        add(Check.DOMAIN, True, DOMAIN)
    elif result is Signature.UNSUPPORTED:
        add(Check.SIGNATURE, None, why)
        add(Check.DOMAIN, None, why)
    else:
        other = next((d for d in OTHER_DOMAINS if verify(key, env.signed_bytes(d), env.signature)[0]
                      is Signature.VALID), None)
        if other is not None:
            add(Check.SIGNATURE, True, f"verifies, but for domain {other!r}")
            add(Check.DOMAIN, False, f"signed for domain {other!r}, not {DOMAIN!r}")
        else:
            add(Check.SIGNATURE, False, f"{why} for domain {DOMAIN!r} (nor for {', '.join(map(repr, OTHER_DOMAINS))})")
            add(Check.DOMAIN, None, "unknown: the signature verifies for no domain")

    signer = key.peer_id()
    if signer == relay_peer_id:
        add(Check.SIGNER, True, "signed with the relay's own key")
    else:
        add(Check.SIGNER, False, f"signed by {peer_id_text(signer)}, not by the relay {peer_id_text(relay_peer_id)}")

    try:
        payload = Voucher.decode(env.payload)
    except pb.MalformedMessage as exc:
        add(Check.PAYLOAD, False, f"the payload is not a Voucher: {exc}")
        report = rest_unchecked(Check.PAYLOAD, "the payload did not parse")
        return VoucherReport(report.results, key.type_name())
    add(Check.PAYLOAD, True, f"Voucher of {len(env.payload)} B")

    if payload.relay == relay_peer_id:
        add(Check.RELAY, True, peer_id_text(payload.relay))
    else:
        add(Check.RELAY, False, f"names relay {peer_id_text(payload.relay)}, not {peer_id_text(relay_peer_id)}")
    if payload.peer == peer_id:
        add(Check.PEER, True, peer_id_text(payload.peer))
    else:
        add(Check.PEER, False, f"names peer {peer_id_text(payload.peer)}, not the one that reserved "
            f"({peer_id_text(peer_id)})")

    exp = payload.expiration
    problems = []
    if exp is None:
        problems.append("no expiration")
    else:
        if expire is not None and abs(exp - expire) > EXPIRATION_TOLERANCE_S:
            problems.append(f"expiration {exp} differs from Reservation.expire {expire} by {exp - expire:+d} s")
        if now_unix_s is not None and exp <= now_unix_s:
            problems.append(f"expired {now_unix_s - exp:.0f} s before the reply arrived")
    if problems:
        add(Check.EXPIRATION, False, "; ".join(problems))
    else:
        add(Check.EXPIRATION, True, f"unix {exp}" + (f", {exp - now_unix_s:.0f} s ahead" if now_unix_s else ""))
    return VoucherReport(tuple(out), key.type_name(), exp)


def seal(*, key_type: int, key_data: bytes, payload: bytes, sign: Callable[[bytes], bytes], domain: str = DOMAIN,
         payload_type: bytes = PAYLOAD_TYPE) -> bytes:
    """Build a signed envelope. For tests and the misbehaving test relay."""
    key = pb.field_varint(1, key_type) + pb.field_bytes(2, key_data)
    signature = sign(signed_bytes(domain, payload_type, payload))
    return pb.field_bytes(1, key) + pb.field_bytes(2, payload_type) + pb.field_bytes(3, payload) + \
        pb.field_bytes(5, signature)


def voucher_payload(relay: bytes, peer: bytes, expiration: int) -> bytes:
    return pb.field_bytes(1, relay) + pb.field_bytes(2, peer) + pb.field_varint(3, expiration)
