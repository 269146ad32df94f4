"""p2pdiag's own Noise: libp2p's secure channel (Noise_XX_25519_ChaChaPoly_SHA256), on `cryptography`.

What the libp2p Noise spec asks (libp2p/specs noise/README.md), and no more: the XX handshake with
an empty prologue, a fresh X25519 static key per connection, the libp2p handshake payload
(`NoiseHandshakePayload{identity_key = 1, identity_sig = 2, extensions = 4}`) in the second and
third messages, the identity key's signature over "noise-libp2p-static-key:" + the Noise static key,
and every message framed by a 2-byte big-endian length (at most 65535 bytes, the 16-byte tag
included). The remote's identity key may be Ed25519, RSA, secp256k1 or ECDSA
(`wire/envelope.verify`, as for a reservation voucher); its peer id must be the one dialed.

Failures raise net's exceptions that `net.classify` names as it names py-libp2p's: a peer id that
is not the one expected is `PeerIDMismatchesPubkey` (peer-id-mismatch), a message that does not
decrypt or a payload that does not verify is a `HandshakeFailure` (security-failed), and the
transport's own end (a reset, EOF) is raised as it came, under a `HandshakeFailure` that says when.
Everything read is bounded by the frame's 65535 bytes.

`SecureConnection` is what probes/yamux.py needs of a secured connection: `read()` one Noise
message's plaintext, `write(data)` (split into messages), `close()`, `get_remote_peer()`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any

from p2pdiag import identity
from p2pdiag.probes import net
from p2pdiag.wire import pb

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"  # 32 bytes: it is h's first value as it is
SIGNATURE_PREFIX = b"noise-libp2p-static-key:"
MAX_MESSAGE = 65535
TAG = 16
MAX_PLAINTEXT = MAX_MESSAGE - TAG
DH_LEN = 32
_LENGTH = struct.Struct(">H")
_NONCE_LIMIT = 2**64 - 1


class CipherState:
    """A ChaCha20-Poly1305 key and its nonce (Noise's CipherState)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = None
        self.nonce = 0
        if key is not None:
            from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

            self._aead = ChaCha20Poly1305(key)

    @property
    def has_key(self) -> bool:
        return self._aead is not None

    def _next_nonce(self) -> bytes:
        if self.nonce >= _NONCE_LIMIT:
            raise net.HandshakeFailure("Noise nonce exhausted")
        nonce = b"\x00\x00\x00\x00" + self.nonce.to_bytes(8, "little")
        self.nonce += 1
        return nonce

    def encrypt(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        return self._aead.encrypt(self._next_nonce(), plaintext, ad)

    def decrypt(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(self._next_nonce(), ciphertext, ad)
        except InvalidTag:
            raise net.HandshakeFailure("a Noise message did not decrypt (wrong key or altered bytes)") from None


def _hkdf(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = hmac.digest(chaining_key, ikm, "sha256")
    out1 = hmac.digest(temp, b"\x01", "sha256")
    return out1, hmac.digest(temp, out1 + b"\x02", "sha256")


class SymmetricState:
    """Noise's SymmetricState: the chaining key, the handshake hash, and the cipher of the moment."""

    def __init__(self) -> None:
        self.h = PROTOCOL_NAME
        self.ck = PROTOCOL_NAME
        self.cipher = CipherState()
        self.mix_hash(b"")  # libp2p's prologue is empty

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, key = _hkdf(self.ck, ikm)
        self.cipher = CipherState(key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = _hkdf(self.ck, b"")
        return CipherState(k1), CipherState(k2)


def _x25519() -> Any:
    from cryptography.hazmat.primitives.asymmetric import x25519

    return x25519


def _public_bytes(private: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _dh(private: Any, public: bytes) -> bytes:
    try:
        return private.exchange(_x25519().X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # a low-order point: the shared secret would be all zeros
        raise net.HandshakeFailure(f"the peer's Noise key is unusable ({exc})") from None


def encode_payload(key_pair: identity.KeyPair, static_public: bytes) -> bytes:
    """The libp2p handshake payload: our identity key and its signature over our Noise static key."""
    return (pb.field_bytes(1, key_pair.public_key)
            + pb.field_bytes(2, key_pair.sign(SIGNATURE_PREFIX + static_public)))


def verify_payload(payload: bytes, remote_static: bytes, expected_peer_id: bytes | None) -> bytes:
    """The remote's peer id (bytes) from its handshake payload, once its identity key's signature over
    its Noise static key verified and, when EXPECTED_PEER_ID is given, the id is that one."""
    from p2pdiag.wire import envelope

    try:
        fields = pb.decode_fields(payload)
        encoded_key, signature = pb.last_bytes(fields, 1), pb.last_bytes(fields, 2)
        if not encoded_key or not signature:
            raise pb.MalformedMessage("no identity key or no signature")
        key = envelope.PublicKey.decode(encoded_key)
    except pb.MalformedMessage as exc:
        raise net.HandshakeFailure(f"the peer's Noise handshake payload is not valid ({exc})") from None
    result, why = envelope.verify(key, SIGNATURE_PREFIX + remote_static, signature)
    if result is not envelope.Signature.VALID:
        unsupported = " (a key type p2pdiag cannot check)" if result is envelope.Signature.UNSUPPORTED else ""
        raise net.HandshakeFailure(f"the peer's identity key does not sign its Noise key: {why}{unsupported}")
    peer_id = key.peer_id()
    if expected_peer_id is not None and peer_id != expected_peer_id:
        raise net.PeerIDMismatchesPubkey(
            f"the peer's key is peer id {envelope.peer_id_text(peer_id)}, not the "
            f"{envelope.peer_id_text(expected_peer_id)} dialed")
    return peer_id


async def _read_message(raw: Any) -> bytes:
    length = _LENGTH.unpack(await net.read_exactly(raw, 2))[0]
    return await net.read_exactly(raw, length)


async def _write_message(raw: Any, message: bytes) -> None:
    await raw.write(_LENGTH.pack(len(message)) + message)


class SecureConnection:
    """A connection secured by Noise: each `read` is one message's plaintext; `write` splits."""

    def __init__(self, raw: Any, send: CipherState, receive: CipherState, remote_peer_id: bytes) -> None:
        self.raw = raw
        self._send = send
        self._receive = receive
        self.remote_peer_id = remote_peer_id

    def get_remote_peer(self) -> str:
        from p2pdiag.wire import envelope

        return envelope.peer_id_text(self.remote_peer_id)

    def get_remote_address(self) -> Any:
        getter = getattr(self.raw, "get_remote_address", None)
        return getter() if getter is not None else None

    async def read(self, n: int | None = None) -> bytes:
        """One Noise message's plaintext (N is not a bound: yamux reads whole messages); b"" at EOF."""
        try:
            prefix = await net.read_exactly(self.raw, 2)
        except EOFError:
            return b""
        message = await net.read_exactly(self.raw, _LENGTH.unpack(prefix)[0])
        return self._receive.decrypt(b"", message)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        out = bytearray()
        while view:
            chunk, view = view[:MAX_PLAINTEXT], view[MAX_PLAINTEXT:]
            message = self._send.encrypt(b"", bytes(chunk))
            out += _LENGTH.pack(len(message)) + message
        if out:
            await self.raw.write(bytes(out))

    async def close(self) -> None:
        await self.raw.close()


class _Steps:
    """Where the handshake is; a failure of the transport under it is raised as a HandshakeFailure
    that says so, with the transport's own exception (a reset, an end) as its cause."""

    def __init__(self, now: str) -> None:
        self.now = now

    def __enter__(self) -> _Steps:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, net.HandshakeFailure) and net.is_network_failure(exc):
            raise net.HandshakeFailure(f"Noise handshake: {self.now}: {exc or type(exc).__name__}") from exc


async def secure_outbound(raw: Any, key_pair: identity.KeyPair, expected_peer_id: str) -> SecureConnection:
    """The XX handshake as the initiator over RAW (read, write); the remote must be EXPECTED_PEER_ID."""
    from p2pdiag.wire import envelope

    try:
        expected = envelope.peer_id_bytes(expected_peer_id)
    except ValueError as exc:  # the callers pass checked peer ids (targets.check_peer_id): a bug if not
        raise TypeError(f"not a peer id: {expected_peer_id!r}") from exc
    x25519 = _x25519()
    static, ephemeral = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    state = SymmetricState()
    with _Steps("sending the first handshake message") as step:
        # -> e
        e_pub = _public_bytes(ephemeral)
        state.mix_hash(e_pub)
        await _write_message(raw, e_pub + state.encrypt_and_hash(b""))
        # <- e, ee, s, es
        step.now = "reading the second handshake message"
        message = await _read_message(raw)
        step.now = "checking the second handshake message"
        if len(message) < DH_LEN + DH_LEN + TAG:
            raise net.HandshakeFailure(f"the second Noise handshake message has {len(message)} bytes, too few")
        remote_e = message[:DH_LEN]
        state.mix_hash(remote_e)
        state.mix_key(_dh(ephemeral, remote_e))
        remote_s = state.decrypt_and_hash(message[DH_LEN:DH_LEN * 2 + TAG])
        state.mix_key(_dh(ephemeral, remote_s))
        payload = state.decrypt_and_hash(message[DH_LEN * 2 + TAG:])
        remote_peer_id = verify_payload(payload, remote_s, expected)
        # -> s, se
        step.now = "sending the third handshake message"
        s_pub = _public_bytes(static)
        third = state.encrypt_and_hash(s_pub)
        state.mix_key(_dh(static, remote_e))
        third += state.encrypt_and_hash(encode_payload(key_pair, s_pub))
        await _write_message(raw, third)
    send, receive = state.split()
    return SecureConnection(raw, send, receive, remote_peer_id)


async def secure_inbound(raw: Any, key_pair: identity.KeyPair) -> SecureConnection:
    """The XX handshake as the responder over RAW (tests answer p2pdiag's and py-libp2p's dials with it)."""
    x25519 = _x25519()
    static, ephemeral = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    state = SymmetricState()
    with _Steps("reading the first handshake message") as step:
        # -> e
        message = await _read_message(raw)
        if len(message) < DH_LEN:
            raise net.HandshakeFailure(f"the first Noise handshake message has {len(message)} bytes, too few")
        remote_e = message[:DH_LEN]
        state.mix_hash(remote_e)
        state.decrypt_and_hash(message[DH_LEN:])
        # <- e, ee, s, es
        step.now = "sending the second handshake message"
        e_pub, s_pub = _public_bytes(ephemeral), _public_bytes(static)
        state.mix_hash(e_pub)
        state.mix_key(_dh(ephemeral, remote_e))
        second = e_pub + state.encrypt_and_hash(s_pub)
        state.mix_key(_dh(static, remote_e))
        second += state.encrypt_and_hash(encode_payload(key_pair, s_pub))
        await _write_message(raw, second)
        # -> s, se
        step.now = "reading the third handshake message"
        message = await _read_message(raw)
        if len(message) < DH_LEN + TAG:
            raise net.HandshakeFailure(f"the third Noise handshake message has {len(message)} bytes, too few")
        remote_s = state.decrypt_and_hash(message[:DH_LEN + TAG])
        state.mix_key(_dh(ephemeral, remote_s))
        payload = state.decrypt_and_hash(message[DH_LEN + TAG:])
        remote_peer_id = verify_payload(payload, remote_s, None)
    receive, send = state.split()
    return SecureConnection(raw, send, receive, remote_peer_id)


class Noise:
    """Noise with one identity, as ProbeContext holds it: `secure_outbound(raw, peer_id)`."""

    def __init__(self, key_pair: identity.KeyPair | None = None) -> None:
        self.key_pair = key_pair or identity.KeyPair(os.urandom(32))

    async def secure_outbound(self, raw: Any, peer_id: str) -> SecureConnection:
        return await secure_outbound(raw, self.key_pair, peer_id)

    async def secure_inbound(self, raw: Any) -> SecureConnection:
        return await secure_inbound(raw, self.key_pair)
