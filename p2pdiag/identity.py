"""--identity: a stable Ed25519 key in a small text file, created with mode 0600.

`seed` reads (or creates) the file with the standard library only, so a bad file is refused
before a run begins; `key_pair` turns the seed into py-libp2p's key pair when the run needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from p2pdiag.errors import UsageError
from p2pdiag.inputs import read_text

MAGIC = "p2pdiag-identity-v1 ed25519"
MAX_BYTES = 4096  # the file is one line of 92 characters; a little room for editors' whitespace


def seed(path: Path) -> bytes:
    """The 32-byte seed in PATH; a new random one, written to PATH, if there is no such file."""
    if not os.path.lexists(path):
        new = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise UsageError(f"--identity {path}: cannot create it ({exc.strerror})") from None
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{MAGIC} {new.hex()}\n")
        return new
    text = read_text(path, "--identity", MAX_BYTES).strip()
    magic, _, seed_hex = text.rpartition(" ")
    try:
        value = bytes.fromhex(seed_hex)
    except ValueError:
        value = b""
    if magic != MAGIC or len(value) != 32:
        raise UsageError(f"--identity {path}: not a p2pdiag identity file (expected '{MAGIC} <64 hex digits>')")
    return value


def key_pair(seed_bytes: bytes) -> Any:
    from p2pdiag.probes.net import ed25519_key_pair

    return ed25519_key_pair(seed_bytes)


def load_or_create(path: Path) -> Any:
    return key_pair(seed(path))



class KeyPair:
    """p2pdiag's own Ed25519 identity, no py-libp2p (the `cryptography` package): it signs, and has
    its encoded public key and its peer id. `seed` makes the same key in py-libp2p
    (`net.ed25519_key_pair(seed)`)."""

    def __init__(self, seed_bytes: bytes | None = None) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        from p2pdiag.wire import envelope, pb

        self.seed = seed_bytes if seed_bytes is not None else os.urandom(32)
        self._private = ed25519.Ed25519PrivateKey.from_private_bytes(self.seed)
        raw = self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key = envelope.PublicKey(envelope.KeyType.ED25519, raw)
        self.public_key = pb.field_varint(1, key.key_type) + pb.field_bytes(2, key.data)  # libp2p's PublicKey
        self.peer_id_bytes = key.peer_id()
        self.peer_id = envelope.b58encode(self.peer_id_bytes)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def own_key_pair(seed_bytes: bytes | None = None) -> KeyPair:
    """The --identity seed (or a new random key) as p2pdiag's own key pair (no py-libp2p)."""
    return KeyPair(seed_bytes)
