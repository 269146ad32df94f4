"""p2pdiag: why a libp2p connection did not become direct, and whether the relay still holds."""

__version__ = "0.1.0"
