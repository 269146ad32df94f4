"""`p2pdiag dial`: through a relay to a peer, the WebRTC upgrade tried, every step diagnosed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from p2pdiag.cli import common
from p2pdiag.errors import UsageError

if TYPE_CHECKING:
    from p2pdiag.trace.recorder import Recorder

DEFAULT_BUDGET_S = 60.0


def dial(
    target: str = typer.Argument(..., metavar="TARGET", show_default=False,
                                 help="RELAY_ADDR/p2p-circuit[/webrtc]/p2p/PEER, or a PEER id with --relay."),
    relay: list[str] = typer.Option([], "--relay", metavar="RELAY_ADDR",
                                    help="A relay's address (/ip4/…/tcp/…/p2p/ID); repeatable."),
    as_json: bool = common.JsonOpt,
    trace: Path | None = common.TraceOpt,
    redact: bool = common.RedactOpt,
    timeout: float | None = common.seconds_option(None, "--timeout", help="Overall budget for the whole run, "
                                                     "in seconds (default: 60, plus --hold)."),
    step_timeout: list[str] = common.StepTimeoutOpt,
    hold: float = common.seconds_option(0.0, "--hold", zero_ok=True, help="Keep the relayed connection this many "
                                        "seconds, pinging, to watch for the relay's limits."),
    ping_interval: float = common.seconds_option(1.0, "--ping-interval", help="Seconds between pings while "
                                                 "holding."),
    no_upgrade: bool = typer.Option(False, "--no-upgrade", help="Check the relayed connection only."),
    stun: list[str] = common.StunOpt,
    turn: list[str] = common.TurnOpt,
    turn_user: str | None = common.TurnUserOpt,
    turn_credential: str | None = common.TurnCredentialOpt,
    ice_policy: str = common.IcePolicyOpt,
    ice_timeout: float | None = common.ice_timeout_option(),
    ice_address: list[str] = common.IceAddressOpt,
    stun_timeout: float | None = common.stun_timeout_option(),
) -> int:
    """Dial a peer through a relay, try the WebRTC upgrade, and diagnose every step."""
    from p2pdiag.targets import parse_target

    if timeout is None:
        timeout = DEFAULT_BUDGET_S + hold
    elif hold >= timeout:
        raise UsageError(f"--hold {hold:g} s does not fit in --timeout {timeout:g} s; give a larger --timeout")
    parsed = parse_target(target, relay)
    timeouts = common.step_timeouts(step_timeout)
    ice, upgrade_timeouts = common.ice_settings(stun, turn, turn_user, turn_credential, ice_policy, ice_timeout,
                                                ice_address, stun_timeout)
    options = {"target": target, "relays": relay, "timeout_s": timeout, "step_timeouts_s": timeouts.as_dict(),
               "hold_s": hold, "ping_interval_s": ping_interval, "upgrade": not no_upgrade,
               "ice": ice.as_dict(), "upgrade_timeouts_s": dataclasses.asdict(upgrade_timeouts)}

    async def body(rec: Recorder) -> None:
        from p2pdiag.probes.dial import DialOptions
        from p2pdiag.probes.dial import dial as run_dial

        await run_dial(DialOptions(target=parsed, timeouts=timeouts, hold_s=hold, ping_interval_s=ping_interval,
                                   upgrade=not no_upgrade, ice=ice, upgrade_timeouts=upgrade_timeouts), rec)

    # dial needs no py-libp2p (its own connections): not importing it saves 1.3 s
    return common.run_and_show("dial", options, body, trace, timeout, as_json, common.redactor(redact), libp2p=False)
