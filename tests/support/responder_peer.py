"""Test-only peer: p2pdiag's Listener, answering WebRTC upgrades or misbehaving on purpose.

`--mode answer` is `p2pdiag listen`'s own responder (Listener with upgrade=True). The other modes
replace it with a handler that breaks the protocol, to test the initiator's findings:
  answer          answer upgrades (the default)
  reset-after-offer   read the offer, then reset the signaling stream
  garbage-answer      read the offer, then send bytes that are not a signaling message
  offer-as-answer     answer with an SDP_OFFER message
  wrong-fingerprint   answer, but with DTLS fingerprints that do not match the certificate
  silent              read the offer, then say nothing
  close-relayed-after-upgrade   answer, then close the relayed connection (js-libp2p #3015)

stdout: one line {"event": "ready", "peer_id": ..., "addrs": [...]}. The trace goes to --trace as
JSON lines, one event a line, flushed. Runs until stdin closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from typing import Any

import trio

from p2pdiag import __version__
from p2pdiag.probes import net
from p2pdiag.probes.listen import Listener, ListenOptions
from p2pdiag.targets import parse_relay
from p2pdiag.trace.file import Header, TraceWriter
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc import signaling
from p2pdiag.webrtc.upgrade import SIGNALING_PROTOCOL, IceConfig, UpgradeTimeouts, handle_signaling_stream
from p2pdiag.wire import pb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay", required=True)
    parser.add_argument("--trace", required=True)
    parser.add_argument("--mode", default="answer",
                        choices=["answer", "reset-after-offer", "garbage-answer", "offer-as-answer",
                                 "wrong-fingerprint", "silent", "close-relayed-after-upgrade"])
    parser.add_argument("--ice-timeout", type=float, default=4.0)
    args = parser.parse_args()

    rec = Recorder()
    out = open(args.trace, "w")  # noqa: SIM115  (closed in the finally at the end)
    writer = TraceWriter(out)
    writer.write_header(Header(command="listen", options={"relays": [args.relay], "mode": args.mode},
                               started_at=datetime.datetime.now(datetime.UTC).isoformat(),
                               p2pdiag_version=__version__))
    rec.add_sink(writer.write_event)

    def ready(peer_id: str, addrs: list[str]) -> None:
        print(json.dumps({"event": "ready", "peer_id": peer_id, "addrs": addrs}), flush=True)

    answer = args.mode == "answer"
    listener = Listener(ListenOptions(relays=(parse_relay(args.relay),), on_ready=ready, upgrade=answer,
                                      ice=IceConfig(), upgrade_timeouts=UpgradeTimeouts(ice=args.ice_timeout)), rec)

    async def relayed_id(stream: object) -> str:
        muxed = id(getattr(stream, "muxed_conn", None))
        with trio.move_on_after(2):
            while muxed not in listener._cids:  # noqa: ASYNC110  (as in ListenProbe._signaling: bounded)
                await trio.sleep(0.01)
        return listener._cids.get(muxed, "inbound-?")

    async def on_signaling(stream: object) -> None:
        if args.mode == "close-relayed-after-upgrade":
            relayed = stream.muxed_conn  # type: ignore[attr-defined]
            conn = await handle_signaling_stream(stream, await relayed_id(stream), rec, IceConfig(),
                                                 UpgradeTimeouts(ice=args.ice_timeout), host=listener.host)
            await trio.sleep(0.1)
            await relayed.close()  # what @libp2p/webrtc <= 5.2.20 did after every attempt
            if conn is not None:
                await trio.sleep(2)
                await conn.close()
            return
        if args.mode != "wrong-fingerprint":
            await misbehave(stream, args.mode)
            return
        conn = await handle_signaling_stream(WrongFingerprint(stream), await relayed_id(stream), rec, IceConfig(),
                                             UpgradeTimeouts(ice=args.ice_timeout), host=listener.host)
        if conn is not None:
            await conn.close()

    if not answer:
        listener.host.set_stream_handler(SIGNALING_PROTOCOL, on_signaling)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            # stdin EOF ends the run, as with the js reference peers
            await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
            nursery.cancel_scope.cancel()

    try:
        trio.run(run)
    except KeyboardInterrupt:
        pass
    finally:
        out.close()


class WrongFingerprint:
    """The signaling stream, with every DTLS fingerprint in the answer changed on the way out."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.muxed_conn = stream.muxed_conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def write(self, data: bytes) -> None:
        try:
            length, start = pb.decode_varint(data)
            message = signaling.Message.decode(data[start:start + length])
        except pb.MalformedMessage:
            message = None
        if message is not None and message.type is signaling.MessageType.SDP_ANSWER and message.data:
            data = signaling.answer(re.sub(r"(a=fingerprint:\S+ )([0-9A-F]{2})", r"\g<1>00",
                                           message.data)).framed()
        await self._stream.write(data)


async def misbehave(stream: object, mode: str) -> None:
    await net.read_delimited(stream, signaling.MAX_MESSAGE_BYTES)  # the offer
    if mode == "reset-after-offer":
        await net.reset_quietly(stream)
    elif mode == "garbage-answer":
        await stream.write(b"\x05\xff\xff\xff\xff\xff")  # type: ignore[attr-defined]
        await trio.sleep(1)
        await net.close_quietly(stream)
    elif mode == "silent":
        await trio.sleep(60)
    elif mode == "offer-as-answer":
        await stream.write(signaling.offer("v=0\r\n").framed())  # type: ignore[attr-defined]
        await trio.sleep(1)
        await net.close_quietly(stream)


if __name__ == "__main__":
    main()
