"""`p2pdiag relay-check`: many relays checked at once.

Only typer is imported at module level: `p2pdiag --help` must not load py-libp2p, trio or aiortc.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from p2pdiag.cli import common
from p2pdiag.errors import UsageError
from p2pdiag.inputs import MiB, read_text

if TYPE_CHECKING:
    from p2pdiag.probes.relaycheck import CheckTarget, Rejected
    from p2pdiag.trace.recorder import Recorder

DEFAULT_TIMEOUT_S = 30.0
MAX_RESERVATIONS = 100
FROM_FILE_MAX_BYTES = MiB  # some ten thousand relay addresses


def read_relays(args: list[str], from_file: Path | None) -> tuple[list[CheckTarget], list[Rejected]]:
    """The relays to check, labelled r1, r2... in order. A bad argument is a UsageError; a bad
    --from-file line is kept, with its line number, to be reported beside the others' results."""
    from p2pdiag.probes.relaycheck import CheckTarget, Rejected
    from p2pdiag.targets import parse_relay

    targets: list[CheckTarget] = []
    rejected: list[Rejected] = []
    seen: dict[str, str] = {}

    def add(text: str, source: str, line: int) -> None:
        relay = parse_relay(text)
        if relay.addr in seen:
            rejected.append(Rejected(source, line, text, "listed twice", duplicate_of=seen[relay.addr]))
            return
        seen[relay.addr] = label = f"r{len(targets) + 1}"
        targets.append(CheckTarget(label, relay, source, line))

    for n, text in enumerate(args, start=1):
        add(text, "argument", n)
    if from_file is not None:
        lines = read_text(from_file, "--from-file", FROM_FILE_MAX_BYTES).splitlines()
        for n, raw in enumerate(lines, start=1):
            text = raw.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                add(text, str(from_file), n)
            except UsageError as exc:
                rejected.append(Rejected(str(from_file), n, text, str(exc)))
    if not targets and not rejected:
        raise UsageError("no relay to check: give relay addresses (/ip4/…/tcp/…/p2p/RELAY_ID) or --from-file FILE")
    return targets, rejected


def relay_check(
    relays: list[str] | None = typer.Argument(None, metavar="[RELAY_ADDR]...", show_default=False,
                                                 help="Relay addresses, each ending in /p2p/RELAY_ID."),
    from_file: Path | None = typer.Option(None, "--from-file", metavar="FILE", help="A file of relay addresses, "
                                             "one a line ('#' starts a comment). Bad lines are reported, not fatal."),
    as_json: bool = common.JsonOpt,
    trace: Path | None = common.TraceOpt,
    redact: bool = common.RedactOpt,
    measure_limits: bool = typer.Option(False, "--measure-limits", help="Push data and hold circuits until the "
                                        "relay cuts them: the real data and duration limits beside the announced."),
    measure_max: float = common.seconds_option(300.0, "--measure-max", help="With --measure-limits: do not wait "
                                               "for a duration limit longer than this many seconds."),
    reservations: int = typer.Option(0, "--reservations", metavar="N", help="Also open N reservations from N "
                                     "identities, one after another, and report when the relay refuses."),
    timeout: float | None = common.seconds_option(None, "--timeout", help="Overall budget in seconds (default "
                                                     "30; with --measure-limits, 60 plus --measure-max)."),
    step_timeout: list[str] = common.StepTimeoutOpt,
) -> int:
    """Check relays, all at once: reachable, HOP, reservation, voucher, limits, and do they really relay?"""
    if timeout is None:
        timeout = 60.0 + measure_max if measure_limits else DEFAULT_TIMEOUT_S
    if not 0 <= reservations <= MAX_RESERVATIONS:
        raise UsageError(f"--reservations must be 0 to {MAX_RESERVATIONS}, got {reservations}")
    targets, rejected = read_relays(list(relays or []), from_file)
    timeouts = common.step_timeouts(step_timeout)

    from p2pdiag.probes.relaycheck import RelayCheckOptions, relay_budget

    opts = RelayCheckOptions(targets=tuple(targets), rejected=tuple(rejected), timeouts=timeouts,
                             relay_budget_s=relay_budget(timeout), measure_limits=measure_limits,
                             measure_max_s=measure_max, reservations=reservations)
    options: dict[str, Any] = {
        "relays": list(relays or []), "from_file": str(from_file) if from_file else None, "timeout_s": timeout,
        "step_timeouts_s": timeouts.as_dict(), "measure_limits": measure_limits, "measure_max_s": measure_max,
        "reservations": reservations, "relay_budget_s": opts.relay_budget_s,
    }

    async def body(rec: Recorder) -> None:
        from p2pdiag.probes.relaycheck import relay_check as run_check

        await run_check(opts, rec)

    return common.run_and_show("relay-check", options, body, trace, timeout, as_json, common.redactor(redact))
