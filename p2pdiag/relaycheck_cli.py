"""`p2pdiag relay-check`: the command, added to the app by `register(app)`.

Only typer is imported at module level: `p2pdiag --help` must not load py-libp2p, trio or aiortc.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from p2pdiag.errors import UsageError

if TYPE_CHECKING:
    from p2pdiag.probes.relaycheck import CheckTarget, Rejected
    from p2pdiag.trace.recorder import Recorder

DEFAULT_TIMEOUT_S = 30.0
MAX_RESERVATIONS = 100
BUDGET_MARGIN_S = (1.0, 5.0)  # each relay's check stops this much (10% of --timeout, within) before the run's end


def register(app: typer.Typer) -> None:
    app.command(name="relay-check")(relay_check)


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
        try:
            lines = from_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UsageError(f"--from-file {from_file}: no such file") from None
        except UnicodeDecodeError:
            raise UsageError(f"--from-file {from_file}: not UTF-8 text") from None
        except OSError as exc:
            raise UsageError(f"--from-file {from_file}: cannot read it ({exc.strerror})") from None
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
    relays: Optional[list[str]] = typer.Argument(None, metavar="RELAY...", show_default=False,
                                                 help="Relay addresses, each ending in /p2p/<relay peer id>."),
    from_file: Optional[Path] = typer.Option(None, "--from-file", help="A file of relay addresses, one a line "
                                             "('#' starts a comment). Bad lines are reported, not fatal."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (schema_version 1) on stdout."),
    trace: Optional[Path] = typer.Option(None, "--trace", help="Write the trace (JSON Lines) to this file."),
    measure_limits: bool = typer.Option(False, "--measure-limits", help="Push data and hold circuits until the "
                                        "relay cuts them: the real data and duration limits beside the announced."),
    measure_max: float = typer.Option(300.0, "--measure-max", metavar="SECONDS", help="With --measure-limits: "
                                      "do not wait for a duration limit longer than this."),
    reservations: int = typer.Option(0, "--reservations", metavar="N", help="Also open N reservations from N "
                                     "identities, one after another, and report when the relay refuses."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Overall budget in seconds (default 30; "
                                            "with --measure-limits, 60 plus --measure-max)."),
    step_timeout: list[str] = typer.Option(
        [], "--step-timeout", metavar="NAME=SECONDS",
        help="Override one step's timeout (relay-connect, identify, hop, reserve, secure, ping, stop, transfer)."),
) -> int:
    """Check relays, all at once: reachable, HOP, reservation, voucher, limits, and do they really relay?"""
    from p2pdiag import cli

    if timeout is None:
        timeout = 60.0 + measure_max if measure_limits else DEFAULT_TIMEOUT_S
    cli._check_positive("--timeout", timeout)
    cli._check_positive("--measure-max", measure_max)
    if not 0 <= reservations <= MAX_RESERVATIONS:
        raise UsageError(f"--reservations must be 0 to {MAX_RESERVATIONS}, got {reservations}")
    targets, rejected = read_relays(list(relays or []), from_file)
    timeouts = cli._step_timeouts(step_timeout)

    from p2pdiag.diagnosis import diagnose
    from p2pdiag.probes.relaycheck import RelayCheckOptions
    from p2pdiag.probes.relaycheck import relay_check as run_check

    margin = min(max(0.1 * timeout, BUDGET_MARGIN_S[0]), BUDGET_MARGIN_S[1])
    opts = RelayCheckOptions(targets=tuple(targets), rejected=tuple(rejected), timeouts=timeouts,
                             relay_budget_s=max(timeout - margin, 0.5 * timeout), measure_limits=measure_limits,
                             measure_max_s=measure_max, reservations=reservations)
    options: dict[str, Any] = {
        "relays": list(relays or []), "from_file": str(from_file) if from_file else None, "timeout_s": timeout,
        "step_timeouts_s": timeouts.as_dict(), "measure_limits": measure_limits, "measure_max_s": measure_max,
        "reservations": reservations, "relay_budget_s": opts.relay_budget_s,
    }

    async def body(rec: Recorder) -> None:
        await run_check(opts, rec)

    result = cli._run_probe("relay-check", options, body, trace, timeout, cli._progress_wanted())
    verdict = diagnose(result)
    if as_json:
        from p2pdiag.render.json import dumps, verdict_document

        print(dumps(verdict_document(verdict, str(trace) if trace else None)))
    else:
        from rich.console import Console

        from p2pdiag.render.relaycheck import render

        # a pipe gets rich's 80 columns, too narrow for the table
        width = None if sys.stdout.isatty() else 120
        render(verdict, Console(highlight=False, width=width), str(trace) if trace else None)
    sys.stdout.flush()
    return int(verdict.exit_code)
