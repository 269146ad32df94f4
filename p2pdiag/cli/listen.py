"""`p2pdiag listen`: reserve slots on relays, print the addresses to dial, trace every inbound attempt."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from p2pdiag.cli import common

if TYPE_CHECKING:
    from rich.console import Console

    from p2pdiag.diagnosis.listen_live import LiveListen
    from p2pdiag.trace.recorder import Recorder


def attempt_ended(live: LiveListen, cid: str, console: Console) -> None:
    """What `listen` shows (stderr) when an inbound attempt ends: that attempt, told from its own events
    (LIVE, fed every event as it was recorded), not the whole trace again."""
    from p2pdiag.render.terminal import render_attempt

    render_attempt(live.ended(cid), console)


def listen(
    relay: list[str] = typer.Option(..., "--relay", metavar="RELAY_ADDR", show_default=False,
                                    help="A relay to reserve a slot on; repeatable."),
    identity: Path | None = typer.Option(None, "--identity", metavar="FILE", help="Key file for a stable peer "
                                            "id (created, mode 0600, if missing). Default: a fresh key each run."),
    as_json: bool = common.JsonOpt,
    trace: Path | None = common.TraceOpt,
    redact: bool = common.RedactOpt,
    timeout: float | None = common.seconds_option(None, "--timeout", help="Stop after this many seconds "
                                                     "(default: run until Ctrl-C)."),
    step_timeout: list[str] = common.StepTimeoutOpt,
    no_upgrade: bool = typer.Option(False, "--no-upgrade", help="Do not answer WebRTC upgrades."),
    stun: list[str] = common.StunOpt,
    turn: list[str] = common.TurnOpt,
    turn_user: str | None = common.TurnUserOpt,
    turn_credential: str | None = common.TurnCredentialOpt,
    ice_policy: str = common.IcePolicyOpt,
    ice_timeout: float | None = common.ice_timeout_option(),
    ice_address: list[str] = common.IceAddressOpt,
    stun_timeout: float | None = common.stun_timeout_option(),
) -> int:
    """Reserve a slot on relays, print the addresses to dial, and trace every inbound attempt."""
    from p2pdiag.targets import parse_relay

    relays = tuple(parse_relay(r) for r in relay)
    timeouts = common.step_timeouts(step_timeout)
    ice, upgrade_timeouts = common.ice_settings(stun, turn, turn_user, turn_credential, ice_policy, ice_timeout,
                                                ice_address, stun_timeout)
    seed = None
    if identity is not None:
        from p2pdiag.identity import seed as read_seed

        seed = read_seed(identity)

    def on_ready(peer_id: str, addrs: list[str]) -> None:
        out = sys.stderr if as_json else sys.stdout
        if not addrs:
            print("No relay gave a reservation; nothing to listen on.", file=out, flush=True)
            return
        print(f"Listening as {peer_id}. Dial me at:", file=out)
        for a in addrs:
            print(f"  {a}", file=out)
        print("Ctrl-C stops and prints the summary.", file=out, flush=True)

    options = {"relays": relay, "identity": str(identity) if identity else None, "timeout_s": timeout,
               "step_timeouts_s": timeouts.as_dict(), "upgrade": not no_upgrade, "ice": ice.as_dict(),
               "upgrade_timeouts_s": dataclasses.asdict(upgrade_timeouts)}
    redactor = common.redactor(redact)  # the addresses to dial are printed as they are: they are to be dialed
    live: list[LiveListen] = []

    def on_inbound_ended(cid: str) -> None:
        attempt_ended(live[0], cid, common.console(stderr=True))

    async def body(rec: Recorder) -> None:
        from p2pdiag.diagnosis.listen_live import LiveListen
        from p2pdiag.identity import key_pair
        from p2pdiag.probes.listen import Listener, ListenOptions

        live.append(LiveListen())
        feed = live[0].add if redactor is None else (lambda event: live[0].add(redactor.event(event)))
        for event in rec.events:  # those recorded before the body began
            feed(event)
        rec.add_sink(feed)
        await Listener(ListenOptions(relays=relays, timeouts=timeouts, on_ready=on_ready,
                                     on_inbound_ended=on_inbound_ended, upgrade=not no_upgrade, ice=ice,
                                     upgrade_timeouts=upgrade_timeouts), rec,
                       key_pair(seed) if seed is not None else None).run()

    return common.run_and_show("listen", options, body, trace, timeout, as_json, redactor)
