"""The human view of a verdict: the step list, the verdict, then what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from p2pdiag.diagnosis.model import Finding, Outcome, Severity, Step, StepStatus, Verdict

if TYPE_CHECKING:
    from p2pdiag.diagnosis.listen_live import AttemptView

MARKS = {
    StepStatus.OK: ("✓", "green"),
    StepStatus.FAILED: ("✗", "red"),
    StepStatus.WARNING: ("⚠", "yellow"),
    StepStatus.SKIPPED: ("–", "dim"),
    StepStatus.INFO: ("·", "cyan"),
}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
OUTCOME_STYLE = {
    Outcome.UPGRADED: "bold green",
    Outcome.LISTENED: "bold green",
    Outcome.RELAYED_ONLY: "bold yellow",
    Outcome.UNREACHABLE: "bold red",
    Outcome.INTERRUPTED: "bold magenta",
}


def render(verdict: Verdict, console: Console, trace_file: str | None = None) -> None:
    console.print(Text(f"p2pdiag {verdict.command}", style="bold"))
    render_steps(verdict.steps, console)
    _render_verdict(verdict, console, trace_file)


def render_steps(steps: tuple[Step, ...] | list[Step], console: Console) -> None:
    if steps:
        console.print(_steps_text(steps), end="")  # one print: rich's cost is per print, not per line


def _steps_text(steps: tuple[Step, ...] | list[Step]) -> Text:
    """Each step in two lines: its mark, title and timing; its detail."""
    text = Text()
    for step in steps:
        mark, style = MARKS[step.status]
        text.append(f" {mark} ", style=style)
        text.append(step.title, style="bold" if step.status is StepStatus.FAILED else "")
        timing = []
        if step.t_s is not None:
            timing.append(f"t={step.t_s:.2f}s")
        if step.duration_s is not None:
            timing.append(f"{step.duration_s * 1000:.0f} ms")
        if timing:
            text.append(f"  [{', '.join(timing)}]", style="dim")
        text.append("\n")
        text.append(f"     {step.detail}", style="dim" if step.status is StepStatus.OK else "")
        text.append("\n")
    return text


def render_attempt(view: AttemptView, console: Console) -> None:
    """`listen`'s live view of one inbound attempt as it ends: its steps, and its reconnect loop."""
    text = Text()
    text.append(f"{view.connection_id} ended", style="bold")
    text.append("\n")
    text.append_text(_steps_text(view.steps))
    for loop in view.loops:
        text.append("reconnect loop:", style="bold yellow")
        text.append(f" round {loop.round} from {loop.peer_id}, one every {loop.period_s:.1f} s")
        text.append("\n")
    console.print(text, end="")


def render_finding(f: Finding, console: Console, number: int | None = None, indent: str = "   ") -> None:
    """One finding: numbered ("1. ") or, without a number, indented like its evidence, less two."""
    head = Text(f"{number}. " if number is not None else indent[:-2])
    head.append(f"[{f.severity.value}] ", style=SEVERITY_STYLE[f.severity])
    head.append(f.title, style="bold")
    if f.confidence.value != "certain":
        head.append(f"  ({f.confidence.value})", style="dim")
    console.print(head)
    for e in f.evidence:
        console.print(Text(f"{indent}evidence: {e}", style="dim"))
    console.print(Text(f"{indent}what to do: {f.advice}"))
    if f.settle:
        console.print(Text(f"{indent}to settle it: {f.settle}", style="dim"))
    console.print(Text(f"{indent}more: p2pdiag explain {f.code}", style="dim"))


def render_notes(verdict: Verdict, console: Console) -> None:
    """What the trace file itself said: its last line cut short, events of unknown types skipped, redacted."""
    notes = verdict.notes
    if notes is None:
        return
    if notes.truncated:
        console.print(Text("Note: the trace's last line was cut short (the run was killed while writing); "
                           "everything before it was read.", style="yellow"))
    if notes.unknown_events:
        console.print(Text(f"Note: {notes.unknown_events} events of types this p2pdiag does "
                           "not know were skipped: a newer p2pdiag wrote this trace.", style="yellow"))
    if notes.redacted:
        console.print(Text("Note: redacted: IP addresses and peer ids are placeholders (each address keeps its "
                           "class, each port stays), TURN credentials are gone; the verdict is the original's.",
                           style="dim"))


def _render_verdict(verdict: Verdict, console: Console, trace_file: str | None) -> None:
    console.print()
    console.print(Text(f"Verdict ({verdict.outcome.value}, exit {int(verdict.exit_code)}): ",
                       style=OUTCOME_STYLE.get(verdict.outcome, "bold")) + Text(verdict.headline))
    if verdict.findings:
        console.print()
    for n, f in enumerate(verdict.findings, start=1):
        render_finding(f, console, n)
    render_notes(verdict, console)
    if trace_file:
        console.print()
        console.print(Text(f"Trace written to {trace_file} (p2pdiag analyze {trace_file})", style="dim"))
