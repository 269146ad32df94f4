"""The WebRTC private-to-private upgrade (libp2p/specs webrtc/webrtc.md), on aiortc behind a trio bridge.

Sans-IO pieces: `signaling` (the signaling messages), `framing` (data channel frames and the
half-close state machine), `sdp` (what an SDP announces). asyncio side: `peer` (one
RTCPeerConnection), `ice` (what p2pdiag reaches into aioice for). The `bridge` joins them to
trio, where `upgrade`, `connection`, `stream`, `ping` and `identify` live. Importing this package
imports none of them.
"""
