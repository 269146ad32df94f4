"""The voucher checks, with no I/O: vouchers real py-libp2p and js-libp2p relays signed (recorded by
tests/record/relay_check.py), the same spoiled one way at a time, and envelopes signed with every libp2p key type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from p2pdiag.wire import envelope, pb
from p2pdiag.wire.envelope import Check, KeyType, PublicKey, check_voucher

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "traces" / "relay-check" / "vouchers.json").read_text())
PEER = envelope.peer_id_bytes("12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV")
OTHER = envelope.peer_id_bytes("12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp")


def _check(raw: bytes, v: dict, **over: object) -> envelope.VoucherReport:
    args = {"relay_peer_id": envelope.peer_id_bytes(v["relay_peer_id"]),
            "peer_id": envelope.peer_id_bytes(v["peer_id"]),
            "expire": v["expire"], "now_unix_s": v["received_unix_s"]}
    return check_voucher(raw, **{**args, **over})  # type: ignore[arg-type]


def _failed(report: envelope.VoucherReport) -> set[Check]:
    return {r.check for r in report.failed}


@pytest.mark.parametrize("v", RECORDED, ids=[v["trace"] for v in RECORDED])
def test_a_real_relays_voucher_passes_every_check(v):
    report = _check(bytes.fromhex(v["voucher_hex"]), v)
    assert report.ok, report.results
    assert [r.check for r in report.results] == list(Check)
    assert report.key_type == "ED25519" and report.expiration == v["expire"]


@pytest.mark.parametrize("v", RECORDED, ids=[v["trace"] for v in RECORDED])
def test_a_tampered_signature_fails_the_signature_check_only(v):
    raw = bytes.fromhex(v["voucher_hex"])
    report = _check(raw[:-1] + bytes([raw[-1] ^ 0x01]), v)
    assert _failed(report) == {Check.SIGNATURE}
    assert "does not verify" in report.result(Check.SIGNATURE).detail


@pytest.mark.parametrize("v", RECORDED, ids=[v["trace"] for v in RECORDED])
def test_checked_against_the_wrong_peer_relay_or_expiry(v):
    raw = bytes.fromhex(v["voucher_hex"])
    assert _failed(_check(raw, v, peer_id=OTHER)) == {Check.PEER}
    # another relay id: the voucher names someone else and was signed by someone else
    assert _failed(_check(raw, v, relay_peer_id=OTHER)) == {Check.SIGNER, Check.RELAY}
    assert _failed(_check(raw, v, expire=v["expire"] + 60)) == {Check.EXPIRATION}
    late = _check(raw, v, now_unix_s=v["expire"] + 5)
    assert _failed(late) == {Check.EXPIRATION} and "expired 5 s before" in late.result(Check.EXPIRATION).detail


# --- envelopes built here, with keys of every type ----------------------------------------------


def _ed25519() -> tuple[ed25519.Ed25519PrivateKey, int, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, KeyType.ED25519, raw


def _seal(key_type: int, data: bytes, sign, relay: bytes, **kw: object) -> bytes:
    payload = kw.pop("payload", None) or envelope.voucher_payload(relay, PEER, 2_000_000_000)
    return envelope.seal(key_type=key_type, key_data=data, payload=payload, sign=sign, **kw)  # type: ignore[arg-type]


def _relay_id(key_type: int, data: bytes) -> bytes:
    return PublicKey(key_type, data).peer_id()


def _report(raw: bytes, relay: bytes) -> envelope.VoucherReport:
    return check_voucher(raw, relay_peer_id=relay, peer_id=PEER, expire=2_000_000_000, now_unix_s=1_900_000_000)


def test_wrong_domain_is_told_apart_from_a_bad_signature():
    key, kt, data = _ed25519()
    relay = _relay_id(kt, data)
    report = _report(_seal(kt, data, key.sign, relay, domain="libp2p-peer-record"), relay)
    assert _failed(report) == {Check.DOMAIN}
    assert report.result(Check.SIGNATURE).ok is True
    assert "libp2p-peer-record" in report.result(Check.DOMAIN).detail


def test_payload_type_written_as_a_varint_is_named():
    key, kt, data = _ed25519()
    relay = _relay_id(kt, data)
    report = _report(_seal(kt, data, key.sign, relay, payload_type=pb.encode_varint(0x0302)), relay)
    assert _failed(report) == {Check.PAYLOAD_TYPE}
    assert "varint" in report.result(Check.PAYLOAD_TYPE).detail


def test_bytes_that_are_no_envelope():
    report = _report(b"\xff\xff\xff", OTHER)
    assert _failed(report) == {Check.ENVELOPE}
    assert all(r.ok is None for r in report.results[1:])


def test_a_payload_that_is_not_a_voucher():
    key, kt, data = _ed25519()
    relay = _relay_id(kt, data)
    report = _report(_seal(kt, data, key.sign, relay, payload=b"\x0a\xff"), relay)
    assert Check.PAYLOAD in _failed(report)
    assert report.result(Check.SIGNATURE).ok is True


def _der(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def test_rsa_ecdsa_and_secp256k1_signatures_are_verified():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p256 = ec.generate_private_key(ec.SECP256R1())
    k1 = ec.generate_private_key(ec.SECP256K1())
    keys = [
        (KeyType.RSA, _der(rsa_key.public_key()), lambda m: rsa_key.sign(m, padding.PKCS1v15(), hashes.SHA256())),
        (KeyType.ECDSA, _der(p256.public_key()), lambda m: p256.sign(m, ec.ECDSA(hashes.SHA256()))),
        (KeyType.SECP256K1, k1.public_key().public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.CompressedPoint),
         lambda m: k1.sign(m, ec.ECDSA(hashes.SHA256()))),
    ]
    for kt, data, sign in keys:
        relay = _relay_id(kt, data)
        assert _report(_seal(kt, data, sign, relay), relay).ok, kt
        bad = _seal(kt, data, lambda m, s=sign: s(m + b"x"), relay)
        assert _failed(_report(bad, relay)) == {Check.SIGNATURE}, kt


def test_py_libp2p_keys_give_the_peer_ids_py_libp2p_gives():
    """The signer check derives a peer id from the key as libp2p does (identity or sha2-256)."""
    from libp2p.crypto.ed25519 import create_new_key_pair as ed
    from libp2p.crypto.rsa import create_new_key_pair as rsa_pair
    from libp2p.crypto.secp256k1 import create_new_key_pair as k1_pair
    from libp2p.peer.id import ID

    for make, kt in ((ed, KeyType.ED25519), (rsa_pair, KeyType.RSA), (k1_pair, KeyType.SECP256K1)):
        pair = make()
        assert PublicKey(kt, pair.public_key.to_bytes()).peer_id() == ID.from_pubkey(pair.public_key).to_bytes()


def test_an_unknown_key_type_is_unverifiable_not_invalid():
    relay = _relay_id(7, b"k" * 32)
    report = _report(_seal(7, b"k" * 32, lambda m: b"sig", relay), relay)
    assert report.result(Check.SIGNATURE).ok is None
    assert "unsupported key type 7" in report.result(Check.SIGNATURE).detail
    assert not report.failed and not report.ok


def test_base58_round_trip():
    for text in ("12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV",
                 "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"):
        assert envelope.b58encode(envelope.peer_id_bytes(text)) == text


def test_now_is_optional():
    v = RECORDED[0]
    report = check_voucher(bytes.fromhex(v["voucher_hex"]), relay_peer_id=envelope.peer_id_bytes(v["relay_peer_id"]),
                           peer_id=envelope.peer_id_bytes(v["peer_id"]), expire=v["expire"], now_unix_s=None)
    assert report.ok
