"""--identity: a stable Ed25519 key in a small text file, created with mode 0600."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from p2pdiag.errors import UsageError

MAGIC = "p2pdiag-identity-v1 ed25519"


def load_or_create(path: Path) -> Any:
    from p2pdiag.probes.net import ed25519_key_pair as create_new_key_pair

    if path.exists():
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--identity {path}: cannot read it ({exc})") from None
        magic, _, seed_hex = text.rpartition(" ")
        try:
            seed = bytes.fromhex(seed_hex)
        except ValueError:
            seed = b""
        if magic != MAGIC or len(seed) != 32:
            raise UsageError(f"--identity {path}: not a p2pdiag identity file (expected '{MAGIC} <64 hex digits>')")
        return create_new_key_pair(seed)
    seed = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UsageError(f"--identity {path}: cannot create it ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(f"{MAGIC} {seed.hex()}\n")
    return create_new_key_pair(seed)
