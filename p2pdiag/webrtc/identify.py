"""Answering /ipfs/id/1.0.0 over a WebRTC connection, with the py-libp2p host's own identify message.

js-libp2p identifies every new connection; without an answer it logs an error and carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from p2pdiag.probes import net
from p2pdiag.webrtc.stream import WebRTCStream
from p2pdiag.wire import pb
from p2pdiag.wire.identify import IDENTIFY_PROTOCOL

logger = logging.getLogger("p2pdiag.webrtc")


def identify_handler(host: Any) -> Callable[[WebRTCStream], Awaitable[None]]:
    async def handle(stream: WebRTCStream) -> None:
        try:
            await stream.write(pb.length_prefixed(net.identify_message(host)))
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            net.classify(exc)  # a bug in p2pdiag goes on up
            logger.debug("identify over WebRTC failed: %s", exc)
            await net.reset_quietly(stream)
            return
        await net.close_quietly(stream)

    return handle


__all__ = ["IDENTIFY_PROTOCOL", "identify_handler"]
