"""The human view of a relay-check verdict: one table row per relay, then details of those that did
not pass, and the information findings of those that did. Every mark and text comes from the
verdict (its typed relay results and their cells); nothing is judged here.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from p2pdiag.diagnosis.facts import Cell, RelayCheckFacts, RelayVerdict
from p2pdiag.diagnosis.model import Outcome, Verdict
from p2pdiag.render.terminal import MARKS, render_finding, render_notes, render_steps

COLUMNS = (("reachable", "reachable"), ("hop", "HOP"), ("reservation", "reservation"), ("limits", "limits"),
           ("voucher", "voucher"), ("loop", "loop: RTT, speed"), ("verdict", "verdict"))
OUTCOME_STYLE = {Outcome.RELAYS_OK: "bold green", Outcome.RELAY_PROBLEM: "bold red",
                 Outcome.INTERRUPTED: "bold magenta"}


def _short_addr(addr: str) -> str:
    head, sep, peer = addr.rpartition("/p2p/")
    return f"{head}{sep}{peer[:8]}…{peer[-4:]}" if sep and len(peer) > 16 else addr


def _cell(cell: Cell | None) -> Text:
    if cell is None:
        return Text("")
    mark, style = MARKS[cell.status]
    return Text(f"{mark} {cell.text}", style=style)


def render(verdict: Verdict, console: Console, trace_file: str | None = None) -> None:
    details = verdict.details
    relays = details.relays if isinstance(details, RelayCheckFacts) else ()
    console.print(Text("p2pdiag relay-check", style="bold"))
    if relays:
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        table.add_column("relay")
        for _, header in COLUMNS:
            table.add_column(header)
        for r in relays:
            table.add_row(r.label, *(_cell(r.cells.get(key)) for key, _ in COLUMNS))
        console.print(table)
        for r in relays:
            console.print(Text(f" {r.label}  {_short_addr(r.relay)}", style="dim"))

    labels = tuple(f"{r.label}." for r in relays)
    general = [s for s in verdict.steps if not s.key.startswith(labels)] if labels else list(verdict.steps)
    if general:
        console.print(Text("Relay list", style="bold"))
        render_steps(general, console)
    in_relays = {i for r in relays for i in r.findings}
    for r in relays:
        passed = r.verdict is RelayVerdict.PASS
        if passed and not r.findings:
            continue
        console.print()
        console.print(Text(f"{r.label} {r.relay}: {r.verdict.value.upper()}", style="bold"))
        if not passed:  # a passing relay's steps are all in its row; only its information findings are not
            render_steps([s for s in verdict.steps if s.key.startswith(f"{r.label}.")], console)
        for i in r.findings:
            render_finding(verdict.findings[i], console, indent="     ")
    rest = [f for i, f in enumerate(verdict.findings) if i not in in_relays]
    if rest:
        console.print()
    for f in rest:
        render_finding(f, console, indent="     ")

    console.print()
    console.print(Text(f"Verdict ({verdict.outcome.value}, exit {int(verdict.exit_code)}): ",
                       style=OUTCOME_STYLE.get(verdict.outcome, "bold")) + Text(verdict.headline))
    render_notes(verdict, console)
    if trace_file:
        console.print(Text(f"Trace written to {trace_file} (p2pdiag analyze {trace_file})", style="dim"))
