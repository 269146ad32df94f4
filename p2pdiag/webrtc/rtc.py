"""Where p2pdiag reaches into aiortc's private side (asyncio side). aiortc has no public way to these.

Every private name p2pdiag takes from aiortc is used here and nowhere else, and
tests/webrtc/test_aiortc_pins.py pins them against the installed aiortc 1.16 (aioice's are in
webrtc/ice.py):

- `RTCDtlsTransport._role`: the DTLS role ("client", "server", or "auto" before it is settled),
  recorded with each DTLS state.
- `RTCDtlsTransport._ssl`: the OpenSSL connection, for the remote's certificate when the handshake
  failed (to tell a certificate that does not match the SDP's fingerprint from no certificate).
- `RTCIceGatherer._remote_candidates_end`: whether the remote's end-of-candidates was applied.
- `RTCIceTransport._connection`: the aioice connection behind a peer connection.
- `RTCSctpTransport._data_channel_receive` (called as `self._data_channel_receive`, so an instance
  attribute wraps it) and `._data_channels`: one guard. libdatachannel (js-libp2p in Node) now and
  then sends DATA_CHANNEL_OPEN twice for one channel (RFC 8832 section 5.1), seen on about 1 upgrade
  in 80 here. aiortc 1.16 meets the second one with `assert stream_id not in self._data_channels`,
  which ends its DTLS transport and the whole connection. The repeat carries nothing new, so it is
  dropped and reported (`ignore_repeated_opens`; tests/webrtc/test_aioice_pins.py pins it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from aiortc.rtcsctptransport import DATA_CHANNEL_OPEN, WEBRTC_DCEP


def dtls_role(dtls: Any) -> str:
    """The DTLS transport's role: "auto", "client" or "server"."""
    return str(dtls._role)


def dtls_peer_certificate(dtls: Any) -> Any | None:
    """The certificate the remote presented during the DTLS handshake (a cryptography object), if any."""
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None:
        return None
    return ssl.get_peer_certificate(as_cryptography=True)


def remote_candidates_ended(pc: Any) -> bool:
    """Whether the remote's end-of-candidates reached the ICE gatherer of the peer connection's data channels."""
    sctp = pc.sctp
    return bool(sctp is not None and sctp.transport.transport.iceGatherer._remote_candidates_end)


def ice_connection(pc: Any) -> Any | None:
    """The aioice connection carrying a peer connection's data channels."""
    sctp = pc.sctp
    if sctp is None:
        return None
    return sctp.transport.transport._connection


def _label(data: bytes) -> str:
    if len(data) < 12:
        return ""
    (label_length,) = struct.unpack_from("!H", data, 8)
    return data[12 : 12 + label_length].decode("utf-8", "replace")


def ignore_repeated_opens(sctp: Any, on_repeat: Callable[[int, str], None]) -> None:
    """Drop a DATA_CHANNEL_OPEN for a stream that already has a channel; tell `on_repeat(stream, label)`."""
    original = sctp._data_channel_receive

    async def receive(stream_id: int, pp_id: int, data: bytes) -> None:
        if pp_id == WEBRTC_DCEP and data and data[0] == DATA_CHANNEL_OPEN and stream_id in sctp._data_channels:
            on_repeat(stream_id, _label(data))
            return
        await original(stream_id, pp_id, data)

    sctp._data_channel_receive = receive
