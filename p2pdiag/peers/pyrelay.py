"""A real py-libp2p Circuit Relay v2 relay (HOP + STOP), for demos and tests.

This wraps the library's own :class:`libp2p.relay.circuit_v2.protocol.CircuitV2Protocol`
(``allow_hop=True``) with explicit :class:`RelayLimits`.  It can be embedded
in-process (:func:`running_relay`, trio) or run as a subprocess::

    python -m p2pdiag.peers.pyrelay --duration-s 5 --data-bytes 4096 --ws-port 0

which prints exactly one JSON line on stdout once ready::

    {"event": "ready", "peer_id": "12D3...", "addrs": ["/ip4/127.0.0.1/tcp/40123/p2p/12D3..."]}

and then runs until SIGTERM/SIGINT or until its stdin reaches EOF (so relays
orphaned by a crashed test runner die with their pipe).

Observed behaviour of the wrapped relay (py-libp2p 0.8.1), see the tests in
``tests/peers/test_pyrelay.py``:

* The ``Limit{duration, data}`` is announced in the RESERVE reply, in the
  STOP CONNECT sent to the target and in the HOP STATUS OK sent to the
  initiator.
* Duration: there is no timer.  Each relay direction checks the deadline
  only at the top of its loop, *before* blocking in read(); so an idle
  circuit outlives the limit, and the first chunk arriving after the deadline
  is still forwarded -- the check right after it cuts the circuit.  The cut:
  a HopMessage STATUS 201 (RESOURCE_LIMIT_EXCEEDED) is written *into the data
  stream* of the side that sent that chunk, then both streams are reset.
* Data: one budget (``data`` bytes of relayed payload, HOP/STOP handshake not
  counted) is shared by both directions.  A chunk that would exceed the
  remaining budget is dropped entirely (not truncated), the same in-band
  STATUS 201 is written to its sender and both streams are reset.  Reaching
  the budget exactly is allowed.
* With yamux, the in-band STATUS only reaches a peer that is reading at the
  time (a RST discards unread buffered data); a reader blocked at the moment
  of the RST sees StreamEOF, later reads StreamReset, writes StreamReset.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.relay.circuit_v2.config import DEFAULT_MAX_CIRCUIT_CONNS
from libp2p.relay.circuit_v2.protocol import (
    PROTOCOL_ID as HOP_PROTOCOL_ID,
)
from libp2p.relay.circuit_v2.protocol import (
    STOP_PROTOCOL_ID,
    CircuitV2Protocol,
)
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.tools.anyio_service import background_trio_service

__all__ = [
    "HOP_PROTOCOL_ID",
    "STOP_PROTOCOL_ID",
    "RelaySettings",
    "RunningRelay",
    "main",
    "relay_limits",
    "running_relay",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelaySettings:
    host: str = "127.0.0.1"
    tcp_port: int = 0
    ws_port: int | None = None  # also listen on /ws if given (0 = any port)
    duration_s: int = 3600  # circuit duration limit announced and enforced
    data_bytes: int = 1 << 30  # circuit data limit
    max_reservations: int = 4
    reservation_ttl_s: int = 3600
    hop: bool = True  # False: a plain libp2p node (identify, ping) that is not a relay
    key_seed: bytes | None = None  # 32 bytes: the same identity on every start (a relay restarted); None: a new one


@dataclass(frozen=True)
class RunningRelay:
    peer_id: str  # base58
    addrs: list[str] = field(default_factory=list)  # full multiaddrs incl /p2p/<id>
    host: Any = field(default=None, compare=False, repr=False)  # the py-libp2p host, for test relays
    protocol: Any = field(default=None, compare=False, repr=False)  # its CircuitV2Protocol


def relay_limits(settings: RelaySettings) -> RelayLimits:
    """The :class:`RelayLimits` the relay is started with for ``settings``."""
    return RelayLimits(
        duration=settings.duration_s,
        data=settings.data_bytes,
        max_circuit_conns=DEFAULT_MAX_CIRCUIT_CONNS,
        max_reservations=settings.max_reservations,
        reservation_ttl=settings.reservation_ttl_s,
    )


def _ip_proto(host: str) -> str:
    return "ip6" if ":" in host else "ip4"


def _listen_addrs(settings: RelaySettings) -> list[multiaddr.Multiaddr]:
    ip = _ip_proto(settings.host)
    addrs = [multiaddr.Multiaddr(f"/{ip}/{settings.host}/tcp/{settings.tcp_port}")]
    if settings.ws_port is not None:
        addrs.append(
            multiaddr.Multiaddr(f"/{ip}/{settings.host}/tcp/{settings.ws_port}/ws")
        )
    return addrs


@asynccontextmanager
async def running_relay(settings: RelaySettings) -> AsyncIterator[RunningRelay]:
    """Run a Circuit Relay v2 relay (HOP+STOP) for the duration of the block.

    Must be used under trio.  Yields once the listeners are bound and the HOP
    and STOP handlers are registered; on exit the protocol service and the
    host (listeners, connections, handler tasks) are shut down.
    """
    listen = _listen_addrs(settings)
    # Quirk: new_host(listen_addrs=...) puts a plain-TCP and a /ws listen addr
    # that share (host, port) behind one PortDemultiplexer socket -- which is
    # what happens for tcp_port == ws_port == 0.  We want two independent
    # sockets, so transports are chosen via flags (listen_addrs=None) and the
    # addresses are only handed to host.run().
    host = new_host(
        key_pair=create_new_key_pair(settings.key_seed),  # fresh ed25519 identity unless seeded
        listen_addrs=None,
        enable_tcp=True,
        enable_websocket=settings.ws_port is not None,
        enable_mDNS=False,
        enable_upnp=False,
        bootstrap=None,
    )
    protocol = CircuitV2Protocol(host, limits=relay_limits(settings), allow_hop=True)

    async with host.run(listen_addrs=listen), AsyncExitStack() as stack:
        if settings.hop:
            await stack.enter_async_context(background_trio_service(protocol))
            # manager.wait_started() (done by background_trio_service) does not
            # imply run() already registered the handlers; event_started does.
            with trio.fail_after(10):
                await protocol.event_started.wait()
            handlers = host.get_mux().handlers
            missing = [p for p in (HOP_PROTOCOL_ID, STOP_PROTOCOL_ID) if p not in handlers]
            if missing:
                raise RuntimeError(f"relay handlers not registered: {missing}")

        peer_id = host.get_id().to_base58()
        # get_transport_addrs() reports the bound sockets (port 0 resolved);
        # TCP first, then /ws, for a stable order.
        bound = [str(a) for a in host.get_transport_addrs()]
        bound.sort(key=lambda a: ("/ws" in a, a))
        addrs = [f"{a}/p2p/{peer_id}" for a in bound]
        try:
            yield RunningRelay(peer_id=peer_id, addrs=addrs, host=host, protocol=protocol)
        finally:
            # CircuitV2Protocol.run()'s own cleanup awaits under
            # cancellation and may skip the handler removal; make sure no
            # new HOP/STOP streams are accepted while tearing down.
            host.remove_stream_handler(HOP_PROTOCOL_ID)
            host.remove_stream_handler(STOP_PROTOCOL_ID)


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    d = RelaySettings()
    p = argparse.ArgumentParser(
        prog="python -m p2pdiag.peers.pyrelay",
        description="Run a py-libp2p Circuit Relay v2 relay (HOP+STOP).",
    )
    p.add_argument(
        "--host", default=d.host, help="IP to listen on (default %(default)s)"
    )
    p.add_argument("--tcp-port", type=int, default=d.tcp_port)
    p.add_argument(
        "--ws-port", type=int, default=None, help="also listen on /ws (0 = any port)"
    )
    p.add_argument("--duration-s", type=int, default=d.duration_s)
    p.add_argument("--data-bytes", type=int, default=d.data_bytes)
    p.add_argument("--max-reservations", type=int, default=d.max_reservations)
    p.add_argument("--reservation-ttl-s", type=int, default=d.reservation_ttl_s)
    p.add_argument("--no-hop", action="store_true", help="a plain libp2p node, not a relay (for tests)")
    p.add_argument("--key-seed", type=bytes.fromhex, default=None,
                   help="64 hex digits: the Ed25519 key's seed, so a restart keeps the peer id")
    p.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="do not exit on stdin EOF (only on SIGTERM/SIGINT)",
    )
    p.add_argument(
        "--log-level",
        default="CRITICAL",
        help="log level for stderr logging (library logs relay resets as ERROR)",
    )
    return p.parse_args(argv)


async def _wait_stdin_eof() -> None:
    """Return when stdin reaches EOF (or is unusable)."""

    def _drain() -> None:
        # os.read on the raw fd, not sys.stdin.buffer: an abandoned daemon
        # thread blocked inside BufferedReader.read holds its lock and makes
        # interpreter shutdown abort ("could not acquire lock ... at
        # interpreter shutdown"), turning a clean SIGTERM exit into SIGABRT.
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return
        try:
            while os.read(fd, 65536):
                pass
        except OSError:
            return

    # Worker threads are daemons; abandoning this one on cancel is fine.
    await trio.to_thread.run_sync(_drain, abandon_on_cancel=True)


async def _serve(
    settings: RelaySettings, watch_stdin: bool, prepare: Callable[[RunningRelay], None] | None = None
) -> None:
    """Serve until a signal or stdin EOF; `prepare` may change the relay before it says ready."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with running_relay(settings) as relay:
            if prepare is not None:
                prepare(relay)
            line = json.dumps(
                {"event": "ready", "peer_id": relay.peer_id, "addrs": relay.addrs}
            )
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    async for signum in signals:
                        logger.info("got signal %s, shutting down", signum)
                        break
                    nursery.cancel_scope.cancel()

                async def on_stdin_eof() -> None:
                    await _wait_stdin_eof()
                    logger.info("stdin closed, shutting down")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                if watch_stdin:
                    nursery.start_soon(on_stdin_eof)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.CRITICAL),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = RelaySettings(
        host=args.host,
        tcp_port=args.tcp_port,
        ws_port=args.ws_port,
        duration_s=args.duration_s,
        data_bytes=args.data_bytes,
        max_reservations=args.max_reservations,
        reservation_ttl_s=args.reservation_ttl_s,
        hop=not args.no_hop,
        key_seed=args.key_seed,
    )
    trio.run(_serve, settings, not args.ignore_stdin)


if __name__ == "__main__":
    main()
