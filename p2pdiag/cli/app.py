"""The typer app: the root options and every command, each from its own module.

Registering a command imports only its module, which imports only typer: the libraries a command
needs are imported when it runs.
"""

from __future__ import annotations

import typer

from p2pdiag import __version__
from p2pdiag.cli import analyze, common, demo, dial, explain, lab, listen, nat, relaycheck, report, watch
from p2pdiag.exitcodes import describe

app = typer.Typer(
    name="p2pdiag",
    help="Why did a libp2p connection not become direct, and does the relayed connection still hold?"
    f"\n\nExit codes: {describe()}.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"p2pdiag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    pass


app.command(name="dial", cls=common.Command)(dial.dial)
app.command(name="listen", cls=common.Command)(listen.listen)
app.command(name="analyze", cls=common.Command)(analyze.analyze)
app.command(name="report", cls=common.Command)(report.report)
app.command(name="demo", cls=common.Command)(demo.demo)
app.command(name="relay-check", cls=common.Command)(relaycheck.relay_check)
app.command(name="nat", cls=common.Command)(nat.nat)
app.command(name="explain", cls=common.Command)(explain.explain)
app.command(name="watch", cls=common.Command)(watch.watch)
app.add_typer(lab.lab_app, name="lab")
