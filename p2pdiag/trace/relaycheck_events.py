"""Events recorded by `p2pdiag relay-check` (registered with the others in events.py's table)."""

from __future__ import annotations
