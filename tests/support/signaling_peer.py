"""Test-only hostile WebRTC responder: p2pdiag's Listener behind a real py relay, answering the
/webrtc-signaling/0.0.1 stream so as to hurt the dialer.

    python tests/support/signaling_peer.py --relay ADDR --mode endless-candidates

  endless-candidates  a real SDP answer (from p2pdiag's own responder), then ICE candidates forever,
                      each a new address, as fast as the stream takes them
  huge-answer         read the offer, then announce a 64 MiB message and send it
  huge-candidate      a real SDP answer, then a candidate message announced as 64 MiB, and sent

stdout: one line {"event": "ready", "peer_id": ..., "addrs": [...]}. Runs until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from p2pdiag.probes import net
from p2pdiag.probes.listen import Listener, ListenOptions
from p2pdiag.targets import parse_relay
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc import signaling
from p2pdiag.webrtc.upgrade import SIGNALING_PROTOCOL, IceConfig, UpgradeTimeouts, handle_signaling_stream
from p2pdiag.wire import pb

HUGE = 64 << 20


async def _flood_message(stream: Any) -> None:
    await stream.write(pb.encode_varint(HUGE))
    chunk = b"\x08\x02" + b"a" * 65534
    for _ in range(HUGE // len(chunk) + 1):
        await stream.write(chunk)


async def _endless_candidates(stream: Any) -> None:
    n = 0
    while True:
        init = signaling.CandidateInit(f"candidate:{n} 1 udp 2130706431 10.{n >> 16 & 255}.{n >> 8 & 255}."
                                       f"{n & 255} {1024 + n % 60000} typ host", "0", 0, None)
        await stream.write(signaling.candidate(init).framed())
        n += 1


class AfterAnswer:
    """The signaling stream: what p2pdiag's responder writes goes out until its SDP answer; then the
    hostile part runs in its place, forever."""

    def __init__(self, stream: Any, mode: str) -> None:
        self._stream = stream
        self._mode = mode
        self.muxed_conn = stream.muxed_conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)
        try:
            length, start = pb.decode_varint(data)
            kind = signaling.Message.decode(data[start:start + length]).type
        except pb.MalformedMessage:
            return
        if kind is signaling.MessageType.SDP_ANSWER:
            if self._mode == "endless-candidates":
                await _endless_candidates(self._stream)
            else:
                await _flood_message(self._stream)
            await trio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay", required=True)
    parser.add_argument("--mode", required=True, choices=["endless-candidates", "huge-answer", "huge-candidate"])
    args = parser.parse_args()
    rec = Recorder()

    def ready(peer_id: str, addrs: list[str]) -> None:
        print(json.dumps({"event": "ready", "peer_id": peer_id, "addrs": addrs}), flush=True)

    listener = Listener(ListenOptions(relays=(parse_relay(args.relay),), on_ready=ready, upgrade=False,
                                      ice=IceConfig()), rec)

    async def on_signaling(stream: Any) -> None:
        try:
            if args.mode == "huge-answer":
                await net.read_delimited(stream, signaling.MAX_MESSAGE_BYTES)  # the offer
                await _flood_message(stream)
                await trio.sleep_forever()
            await handle_signaling_stream(AfterAnswer(stream, args.mode), "inbound", rec, IceConfig(),
                                          UpgradeTimeouts(), host=listener.host)
        except Exception:  # noqa: BLE001  (the dialer gave up: the expected end of a hostile peer)
            await net.reset_quietly(stream)

    listener.host.set_stream_handler(SIGNALING_PROTOCOL, on_signaling)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
            nursery.cancel_scope.cancel()

    trio.run(run)


if __name__ == "__main__":
    main()
