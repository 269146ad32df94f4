"""Where p2pdiag reaches into aiortc's SCTP transport (asyncio side): one guard.

libdatachannel (js-libp2p in Node) now and then sends DATA_CHANNEL_OPEN twice for one channel
(RFC 8832 section 5.1), seen on about 1 upgrade in 80 here. aiortc 1.16 meets the second one with
`assert stream_id not in self._data_channels` in `_data_channel_receive`, which ends its DTLS
transport and the whole connection. The repeat carries nothing new, so it is dropped and reported.

`RTCSctpTransport._data_channel_receive` is private and called as `self._data_channel_receive`;
tests/webrtc/test_aioice_pins.py pins both.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from aiortc.rtcsctptransport import DATA_CHANNEL_OPEN, WEBRTC_DCEP


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
