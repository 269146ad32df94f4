"""`p2pdiag demo`: a relay and a listening peer on loopback, a dial through them, the diagnosis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from p2pdiag.cli import common
from p2pdiag.errors import UsageError

if TYPE_CHECKING:
    from p2pdiag.trace.recorder import Recorder


def demo(
    as_json: bool = common.JsonOpt,
    trace: Path | None = common.TraceOpt,
    redact: bool = common.RedactOpt,
    hold: float = common.seconds_option(0.0, "--hold", zero_ok=True, help="Keep the relayed connection this many "
                                        "seconds."),
    relay_duration: int = typer.Option(120, "--relay-duration", metavar="SECONDS",
                                       help="The embedded relay's circuit duration limit, in seconds."),
    relay_data: int = typer.Option(131072, "--relay-data", metavar="BYTES",
                                   help="The embedded relay's circuit data limit, in bytes."),
    timeout: float = common.seconds_option(60.0, "--timeout", help="Overall budget, in seconds."),
) -> int:
    """Run a relay and a listening peer on loopback, dial through them, and show the diagnosis."""
    if relay_duration <= 0 or relay_data <= 0:
        raise UsageError("--relay-duration and --relay-data must be more than zero")
    if hold >= timeout:
        raise UsageError(f"--hold {hold:g} s does not fit in --timeout {timeout:g} s; give a larger --timeout")
    from p2pdiag.demo import LOOPBACK_ONLY, run_demo

    options = {"hold_s": hold, "relay_duration_s": relay_duration, "relay_data_bytes": relay_data,
               "timeout_s": timeout, "ice": LOOPBACK_ONLY.as_dict()}

    async def body(rec: Recorder) -> None:
        await run_demo(rec, hold_s=hold, relay_duration_s=relay_duration, relay_data_bytes=relay_data)

    return common.run_and_show("demo", options, body, trace, timeout, as_json, common.redactor(redact))
