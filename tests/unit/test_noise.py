"""probes/noise.py: p2pdiag's own Noise XX, against itself and against py-libp2p's Noise (both ways),
with every identity key type the libp2p Noise spec allows, and its failures named by net.classify as
py-libp2p's were (tests/unit/test_error_kinds.py). js-libp2p's Noise: tests/interop/test_own_stack_js.py."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from p2pdiag.identity import KeyPair
from p2pdiag.probes import net, noise
from p2pdiag.trace.events import ErrorKind
from p2pdiag.wire import envelope, pb


class Raw:
    """One end of an in-memory byte stream as a raw connection (read at most N, write, close)."""

    def __init__(self, stream, fail_after_writes: int | None = None, fail_with: BaseException | None = None,
                 garble: bool = False) -> None:
        self.stream = stream
        self.writes = 0
        self.fail_after_writes = fail_after_writes
        self.fail_with = fail_with
        self.garble = garble  # flip one bit of the first chunk read that is longer than 40 bytes
        self.written: list[bytes] = []

    async def read(self, n=None):
        if self.fail_after_writes is not None and self.writes >= self.fail_after_writes:
            raise self.fail_with
        data = await self.stream.receive_some(n or 65536)
        if self.garble and len(data) > 40:
            self.garble = False
            data = data[:40] + bytes([data[40] ^ 0x01]) + data[41:]
        return data

    async def write(self, data):
        self.writes += 1
        self.written.append(bytes(data))
        await self.stream.send_all(data)

    async def close(self):
        await self.stream.aclose()


async def handshake(initiator, responder, a_raw=None, b_raw=None):
    """(initiator's connection, responder's) over one in-memory stream; initiator(raw), responder(raw)."""
    a, b = trio.testing.memory_stream_pair()
    a_raw, b_raw = (a_raw or Raw)(a), (b_raw or Raw)(b)
    got = {}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def answer():
                got["b"] = await responder(b_raw)

            nursery.start_soon(answer)
            got["a"] = await initiator(a_raw)
    return got["a"], got["b"]


async def read_all(conn, n: int, *, exact_reads: bool = False) -> bytes:
    out = b""
    while len(out) < n:
        out += await conn.read(n - len(out) if exact_reads else None)
    return out


def test_own_initiator_and_responder_agree_and_check_each_others_peer_ids():
    alice, bob = KeyPair(), KeyPair()

    async def main():
        a, b = await handshake(lambda raw: noise.secure_outbound(raw, alice, bob.peer_id),
                               lambda raw: noise.secure_inbound(raw, bob))
        assert a.get_remote_peer() == bob.peer_id and b.get_remote_peer() == alice.peer_id
        big = bytes(range(256)) * 800  # 204,800 bytes: four Noise messages
        await a.write(big)
        assert await read_all(b, len(big)) == big
        await b.write(b"back")
        assert await a.read() == b"back"

    trio.run(main)


def test_messages_stay_within_the_65535_byte_frame():
    alice, bob = KeyPair(), KeyPair()
    sent: list[Raw] = []

    def recording(stream):
        raw = Raw(stream)
        sent.append(raw)
        return raw

    async def main():
        a, b = await handshake(lambda raw: noise.secure_outbound(raw, alice, bob.peer_id),
                               lambda raw: noise.secure_inbound(raw, bob), a_raw=recording)
        await a.write(b"x" * 200_000)
        await read_all(b, 200_000)

    trio.run(main)
    data = sent[0].written[-1]  # the transport write: length-prefixed messages back to back
    lengths = []
    while data:
        length = int.from_bytes(data[:2], "big")
        lengths.append(length)
        data = data[2 + length:]
    assert lengths == [65535, 65535, 65535, 200_000 - 3 * noise.MAX_PLAINTEXT + noise.TAG]


def test_with_py_libp2ps_noise_both_ways():
    from libp2p.crypto.x25519 import create_new_key_pair as noise_key
    from libp2p.peer.id import ID
    from libp2p.security.noise.transport import Transport

    ours, theirs = KeyPair(), KeyPair()
    py = Transport(net.ed25519_key_pair(theirs.seed), noise_privkey=noise_key().private_key)
    assert str(ID.from_pubkey(net.ed25519_key_pair(theirs.seed).public_key)) == theirs.peer_id

    async def main():
        # ours dials py-libp2p's
        a, b = await handshake(lambda raw: noise.secure_outbound(raw, ours, theirs.peer_id), py.secure_inbound)
        assert a.get_remote_peer() == theirs.peer_id and str(b.get_remote_peer()) == ours.peer_id
        await a.write(b"ping" * 40_000)
        assert await read_all(b, 160_000, exact_reads=True) == b"ping" * 40_000
        await b.write(b"pong")
        assert await a.read() == b"pong"
        # py-libp2p's dials ours
        a, b = await handshake(lambda raw: py.secure_outbound(raw, ID.from_base58(ours.peer_id)),
                               lambda raw: noise.secure_inbound(raw, ours))
        assert str(a.get_remote_peer()) == ours.peer_id and b.get_remote_peer() == theirs.peer_id
        await a.write(b"hello")
        assert await b.read() == b"hello"
        await b.write(b"x" * 100_000)
        assert await read_all(a, 100_000, exact_reads=True) == b"x" * 100_000

    trio.run(main)


class OtherKey:
    """An identity key of another type, signing as libp2p does for it."""

    def __init__(self, kind: str) -> None:
        der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if kind == "rsa":
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_type, data = envelope.KeyType.RSA, self._key.public_key().public_bytes(*der)
        elif kind == "ecdsa":
            self._key = ec.generate_private_key(ec.SECP256R1())
            key_type, data = envelope.KeyType.ECDSA, self._key.public_key().public_bytes(*der)
        else:
            self._key = ec.generate_private_key(ec.SECP256K1())
            key_type, data = envelope.KeyType.SECP256K1, self._key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        self.kind = kind
        self.public_key = pb.field_varint(1, key_type) + pb.field_bytes(2, data)
        self.peer_id = envelope.b58encode(envelope.PublicKey(key_type, data).peer_id())

    def sign(self, data: bytes) -> bytes:
        if self.kind == "rsa":
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("kind, prefix", [("rsa", "Qm"), ("ecdsa", "Qm"), ("secp256k1", "16Uiu2HA")])
def test_a_peer_with_an_rsa_secp256k1_or_ecdsa_identity_key(kind, prefix):
    peer, ours = OtherKey(kind), KeyPair()
    assert peer.peer_id.startswith(prefix)

    async def main():
        a, b = await handshake(lambda raw: noise.secure_outbound(raw, ours, peer.peer_id),
                               lambda raw: noise.secure_inbound(raw, peer))
        assert a.get_remote_peer() == peer.peer_id
        await b.write(b"ok")
        assert await a.read() == b"ok"

    trio.run(main)


def kind_of_failure(initiator_raw=None, responder_raw=None, expected: str | None = None,
                    responder_key=None) -> tuple[ErrorKind, str]:
    ours, theirs = KeyPair(), responder_key or KeyPair()

    async def main():
        try:
            await handshake(lambda raw: noise.secure_outbound(raw, ours, expected or theirs.peer_id),
                            lambda raw: noise.secure_inbound(raw, theirs), a_raw=initiator_raw, b_raw=responder_raw)
        except BaseExceptionGroup as exc:  # the initiator's failure, and the responder's
            return net.classify(exc)
        raise AssertionError("the handshake succeeded")

    return trio.run(main)


def test_a_peer_id_that_is_not_the_remotes_key_is_a_peer_id_mismatch():
    kind, message = kind_of_failure(expected=KeyPair().peer_id)
    assert kind is ErrorKind.PEER_ID_MISMATCH and "dialed" in message


def test_a_garbled_handshake_is_a_security_failure():
    # one bit of the responder's second message (its encrypted static key) flipped on the way
    kind, message = kind_of_failure(initiator_raw=lambda s: Raw(s, garble=True))
    assert kind is ErrorKind.SECURITY_FAILED and "decrypt" in message


def test_a_reset_or_an_end_mid_handshake_is_named_as_such():
    reset = ConnectionResetError(104, "Connection reset by peer")
    kind, _ = kind_of_failure(initiator_raw=lambda s: Raw(s, fail_after_writes=1, fail_with=reset))
    assert kind is ErrorKind.RESET
    kind, _ = kind_of_failure(initiator_raw=lambda s: Raw(s, fail_after_writes=1,
                                                          fail_with=net.library_error("StreamReset", "reset")))
    assert kind is ErrorKind.RESET
    kind, _ = kind_of_failure(initiator_raw=lambda s: Raw(s, fail_after_writes=1, fail_with=EOFError("ended")))
    assert kind is ErrorKind.CLOSED


def test_a_signature_that_does_not_verify_is_a_security_failure():
    class Liar(OtherKey):
        def sign(self, data: bytes) -> bytes:
            return super().sign(data + b"!")

    kind, message = kind_of_failure(responder_key=Liar("secp256k1"))
    assert kind is ErrorKind.SECURITY_FAILED and "does not verify" in message
