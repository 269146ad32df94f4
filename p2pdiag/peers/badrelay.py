"""A Circuit Relay v2 relay that misbehaves on purpose, one way per --mode, for relay-check's tests.

It is the py-libp2p relay of pyrelay.py with its HOP handler replaced: RESERVE is answered here
(with a voucher signed here, then spoiled as the mode says), CONNECT goes to the library's own
handler, so apart from its one fault the relay really relays::

    python -m p2pdiag.peers.badrelay --mode bad-signature

prints one JSON line, {"event": "ready", "peer_id": ..., "addrs": [...], "mode": ...}, and runs until
SIGTERM/SIGINT or stdin EOF, as pyrelay does.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

import trio
from libp2p.peer.id import ID

from p2pdiag.peers.pyrelay import HOP_PROTOCOL_ID, RelaySettings, RunningRelay, _serve
from p2pdiag.probes import net
from p2pdiag.wire import circuit, envelope

UNKNOWN_STATUS = 999
OTHER_PEER = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"


class Mode(enum.Enum):
    BAD_SIGNATURE = "bad-signature"  # the voucher's signature has one bit flipped
    WRONG_PEER = "wrong-peer"  # the voucher, correctly signed, names another peer
    WRONG_DOMAIN = "wrong-domain"  # the voucher is signed for domain libp2p-peer-record
    EXPIRED = "expired"  # Reservation.expire and the voucher's expiration lie a minute in the past
    UNKNOWN_STATUS = "unknown-status"  # RESERVE is answered with STATUS 999
    SILENT = "silent"  # the HOP stream is accepted and never answered
    NO_RELAY = "no-relay"  # reservations are fine; CONNECT is answered OK and then nothing is relayed
    CORRUPT = "corrupt"  # relays, but flips a bit of every chunk the dialer sends (pings included)
    CORRUPT_PAYLOAD = "corrupt-payload"  # relays the first 100 bytes from the dialer intact, then as corrupt
    SHORT_PAYLOAD = "short-payload"  # relays the first 1100 bytes from the dialer, then ends that direction


CORRUPT_FROM = {Mode.CORRUPT: 0, Mode.CORRUPT_PAYLOAD: 100}  # byte offset, dialer to listener
CUT_AT = {Mode.SHORT_PAYLOAD: 1100}  # byte offset, dialer to listener: the rest is dropped, the stream half-closed


async def _hop(relay: RunningRelay, mode: Mode, stream: Any) -> None:
    try:
        raw = await net.read_delimited(stream, circuit.MAX_MESSAGE_BYTES)
        if mode is Mode.SILENT:
            await trio.sleep_forever()
        msg = circuit.HopMessage.decode(raw)
        if msg.type == circuit.HopType.RESERVE:
            await net.write_delimited(stream, _reserve_reply(relay, mode, stream.muxed_conn.peer_id).encode())
            await net.close_quietly(stream)
        elif msg.type == circuit.HopType.CONNECT and mode is Mode.NO_RELAY:
            reply = circuit.HopMessage(type=circuit.HopType.STATUS, status=circuit.Status.OK, limit=_limit(relay))
            await net.write_delimited(stream, reply.encode())
            await trio.sleep_forever()
        elif (msg.type == circuit.HopType.CONNECT and (mode in CORRUPT_FROM or mode in CUT_AT)
              and msg.peer is not None
              and relay.protocol.resource_manager.can_accept_connection(peer_id=ID(msg.peer.id))):
            await _corrupt_splice(relay, stream, msg.peer.id, CORRUPT_FROM.get(mode), CUT_AT.get(mode))
        elif msg.type == circuit.HopType.CONNECT:
            from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage

            await relay.protocol._handle_connect(stream, HopMessage.FromString(raw))
        else:
            reply = circuit.HopMessage(type=circuit.HopType.STATUS, status=circuit.Status.UNEXPECTED_MESSAGE)
            await net.write_delimited(stream, reply.encode())
    except Exception:  # noqa: BLE001  (a test relay outlives its dialers: whatever went wrong, reset the stream)
        await net.reset_quietly(stream)


async def _corrupt_splice(relay: RunningRelay, stream: Any, target: bytes, corrupt_from: int | None,
                          cut_at: int | None = None) -> None:
    """The relay's job done here (STOP CONNECT to the target, STATUS OK to the dialer, bytes both
    ways), except that from `corrupt_from` on, the last byte of each chunk from the dialer is flipped,
    and from `cut_at` on, the dialer's bytes are dropped and the target sees its stream end."""
    dst = await relay.host.new_stream(ID(target), [circuit.STOP_PROTOCOL])
    stop = circuit.StopMessage(type=circuit.StopType.CONNECT,
                               peer=circuit.Peer(id=stream.muxed_conn.peer_id.to_bytes()), limit=_limit(relay))
    await net.write_delimited(dst, stop.encode())
    answer = circuit.StopMessage.decode(await net.read_delimited(dst, circuit.MAX_MESSAGE_BYTES))
    status = circuit.Status.OK if answer.status == circuit.Status.OK else circuit.Status.CONNECTION_FAILED
    await net.write_delimited(stream, circuit.HopMessage(type=circuit.HopType.STATUS, status=status,
                                                         limit=_limit(relay)).encode())
    if status != circuit.Status.OK:
        await net.reset_quietly(dst)
        return

    async def pipe(src: Any, to: Any, flip_from: int | None, done: trio.CancelScope, cut: int | None = None) -> None:
        offset = 0
        with contextlib.suppress(Exception):  # one side ended or reset, whatever it raised: tear both down
            while chunk := await src.read(65536):
                if cut is not None and offset + len(chunk) >= cut:
                    await to.write(chunk[:cut - offset])
                    await to.close_write()  # a half-close: the answer still comes back the other way
                    while await src.read(65536):
                        pass
                    break
                if flip_from is not None and offset + len(chunk) > flip_from:
                    chunk = chunk[:-1] + bytes([chunk[-1] ^ 0x01])
                offset += len(chunk)
                await to.write(chunk)
        done.cancel()  # as a relay does

    with trio.CancelScope() as done:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pipe, stream, dst, corrupt_from, done, cut_at)
            nursery.start_soon(pipe, dst, stream, None, done)
    await net.close_quietly(dst)
    await net.close_quietly(stream)


def _limit(relay: RunningRelay) -> circuit.Limit:
    limits = relay.protocol.limits
    return circuit.Limit(duration=limits.duration, data=limits.data)


def _reserve_reply(relay: RunningRelay, mode: Mode, peer: Any) -> circuit.HopMessage:
    if mode is Mode.UNKNOWN_STATUS:
        return circuit.HopMessage(type=circuit.HopType.STATUS, status=UNKNOWN_STATUS)
    manager = relay.protocol.resource_manager
    manager.reserve(peer)  # the library's own bookkeeping, so CONNECT to this peer works
    expire = int(manager.get_reservation(peer).expires_at)
    if mode is Mode.EXPIRED:
        expire = int(time.time()) - 60
    host = relay.host
    named = envelope.peer_id_bytes(OTHER_PEER) if mode is Mode.WRONG_PEER else peer.to_bytes()
    voucher = envelope.seal(
        key_type=envelope.KeyType.ED25519,
        key_data=host.get_public_key().to_bytes(),
        payload=envelope.voucher_payload(host.get_id().to_bytes(), named, expire),
        sign=host.get_private_key().sign,
        domain="libp2p-peer-record" if mode is Mode.WRONG_DOMAIN else envelope.DOMAIN,
    )
    if mode is Mode.BAD_SIGNATURE:
        voucher = voucher[:-1] + bytes([voucher[-1] ^ 0x01])
    addrs = tuple(a.to_bytes() for a in host.get_addrs())
    return circuit.HopMessage(
        type=circuit.HopType.STATUS,
        status=circuit.Status.OK,
        reservation=circuit.Reservation(expire=expire, addrs=addrs, voucher=voucher),
        limit=_limit(relay),
    )


def _install(mode: Mode, relay: RunningRelay) -> None:
    relay.host.set_stream_handler(HOP_PROTOCOL_ID, functools.partial(_hop, relay, mode))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m p2pdiag.peers.badrelay", description=__doc__.split("\n")[0])
    p.add_argument("--mode", required=True, choices=[m.value for m in Mode])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ignore-stdin", action="store_true", help="do not exit on stdin EOF")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    trio.run(_serve, RelaySettings(host=args.host), not args.ignore_stdin,
             functools.partial(_install, Mode(args.mode)))


if __name__ == "__main__":
    main()
