"""`p2pdiag listen`: reserve slots on relays, print the addresses to dial, trace every inbound attempt."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from p2pdiag import __version__
from p2pdiag.cli import common

if TYPE_CHECKING:
    from p2pdiag.trace.recorder import Recorder


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
    rec_holder: list[Recorder] = []
    redactor = common.redactor(redact)  # the addresses to dial are printed as they are: they are to be dialed

    def on_inbound_ended(cid: str) -> None:
        """Each inbound attempt's own steps, diagnosed from the trace so far, as it ends."""
        from p2pdiag.diagnosis import diagnose
        from p2pdiag.diagnosis.listen import attempt_steps
        from p2pdiag.render.terminal import render_steps
        from p2pdiag.trace.file import Header, Trace

        trace = Trace(Header("listen", options, "", __version__), rec_holder[0].events)
        so_far = diagnose(trace if redactor is None else redactor.trace(trace))
        console = common.console(stderr=True)
        console.print(f"[bold]{cid} ended[/bold]")
        render_steps(attempt_steps(so_far, cid), console)
        for loop in so_far.facts.get("reconnect_loops", []):
            if cid in loop["connection_ids"]:
                console.print(f"[bold yellow]reconnect loop:[/bold yellow] "
                              f"round {loop['connection_ids'].index(cid) + 1} "
                              f"from {loop['peer_id']}, one every {loop['period_s']:.1f} s")

    async def body(rec: Recorder) -> None:
        from p2pdiag.identity import key_pair
        from p2pdiag.probes.listen import Listener, ListenOptions

        rec_holder.append(rec)
        await Listener(ListenOptions(relays=relays, timeouts=timeouts, on_ready=on_ready,
                                     on_inbound_ended=on_inbound_ended, upgrade=not no_upgrade, ice=ice,
                                     upgrade_timeouts=upgrade_timeouts), rec,
                       key_pair(seed) if seed is not None else None).run()

    return common.run_and_show("listen", options, body, trace, timeout, as_json, redactor)
