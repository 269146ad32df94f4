"""`p2pdiag demo`: a real relay and a real listening peer on loopback, and a real dial through them."""

from __future__ import annotations

import trio

from p2pdiag.peers.pyrelay import RelaySettings, running_relay
from p2pdiag.probes.dial import DialOptions, dial
from p2pdiag.probes.listen import Listener, ListenOptions
from p2pdiag.targets import parse_relay, parse_target
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc.config import IceConfig

LOOPBACK_ONLY = IceConfig(host_addresses=())  # the demo stays on 127.0.0.1: both peers gather there only

READY_TIMEOUT_S = 15.0


async def run_demo(rec: Recorder, *, hold_s: float, relay_duration_s: int, relay_data_bytes: int) -> None:
    settings = RelaySettings(duration_s=relay_duration_s, data_bytes=relay_data_bytes)
    async with running_relay(settings) as relay, trio.open_nursery() as nursery:
        relay_addr = next(a for a in relay.addrs if "/ws" not in a)
        ready = trio.Event()
        found: list[str] = []

        def on_ready(peer_id: str, addrs: list[str]) -> None:
            found.extend(addrs)
            ready.set()

        # The listening peer keeps its own trace: the demo's trace is the dialer's.
        listener = Listener(ListenOptions(relays=(parse_relay(relay_addr),), on_ready=on_ready, ice=LOOPBACK_ONLY),
                            Recorder())
        nursery.start_soon(listener.run)
        with trio.fail_after(READY_TIMEOUT_S):
            await ready.wait()
        if not found:
            raise RuntimeError("the embedded listener got no reservation from the embedded relay")
        target = parse_target(next(a for a in found if "/webrtc/" in a), [])
        await dial(DialOptions(target=target, hold_s=hold_s, ice=LOOPBACK_ONLY), rec)
        nursery.cancel_scope.cancel()
