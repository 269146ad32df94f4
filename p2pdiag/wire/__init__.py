"""Sans-IO codecs for the few libp2p messages p2pdiag writes and reads itself."""
