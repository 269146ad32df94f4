"""`p2pdiag lab up|down|status|run`: the fault lab from the command line; render/lab.py shows the results.

Only typer is imported at module level; the lab and the scenarios are imported inside the commands.
Every command needs root (network namespaces) and says so in one line, exit 2, when it has not.
`run` builds its own lab and always tears it down (Ctrl-C and SIGTERM too); `up` leaves a detached
lab for hands-on work until `down`. Nothing is ever created in the host's own namespace.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from p2pdiag.cli import common
from p2pdiag.errors import UsageError
from p2pdiag.exitcodes import ExitCode

lab_app = typer.Typer(
    name="lab",
    help="The fault lab: real NAT routers, firewalls and a STUN/TURN server in network namespaces "
    "(needs root). `run SCENARIO` reproduces a ticket's network and checks the verdict; see docs/lab.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _require_root() -> None:
    """Every lab command's first step. The lab handles Ctrl-C and SIGTERM itself (it always tears down)."""
    from p2pdiag import interrupts
    from p2pdiag.lab.runner import NeedsRoot

    interrupts.release()
    if os.geteuid() != 0:
        raise UsageError(str(NeedsRoot()))


def _usage(exc: Exception) -> UsageError:
    """Lab and scenario problems are the user's to fix (root, packages, a scenario file): exit 2."""
    return UsageError(str(exc))


def _router_option(lan: str) -> Any:
    return typer.Option(None, f"--{lan}", metavar="KEY=VALUE,...", help=f"Router {lan}: e.g. "
                        "'nat=symmetric' or 'nat=cone,udp=blocked' "
                        "(nat, filtering, udp, loss_percent, delay_ms, jitter_ms).")


def _parse_router(text: str | None, lan: str) -> Any:
    from p2pdiag.lab import Router

    if not text:
        return Router()
    settings: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"--{lan} {text!r}: each setting is KEY=VALUE")
        settings[key.strip()] = value.strip()
    try:
        return Router.from_dict(settings)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--{lan}: {exc}") from None


@lab_app.command(cls=common.Command)
def up(
    scenario: str | None = typer.Option(None, "--scenario", metavar="SCENARIO", help="Build the lab of this "
                                        "scenario (a name or a file); no peers are started."),
    a: str | None = _router_option("a"),
    b: str | None = _router_option("b"),
    as_json: bool = common.JsonOpt,
) -> int:
    """Build a lab and leave it up (detached) for hands-on work; `p2pdiag lab down ID` removes it."""
    _require_root()
    from p2pdiag.lab import Lab, LabError, Topology
    from p2pdiag.lab.scenario import ScenarioError, find_scenario

    try:
        if scenario is not None:
            if a or b:
                raise UsageError("--scenario gives both routers: leave out --a and --b")
            topology = find_scenario(scenario).topology
        else:
            topology = Topology(a=_parse_router(a, "a"), b=_parse_router(b, "b"))
        lab = Lab(topology).up()
        lab.detach()
        status = lab.status()
    except (LabError, ScenarioError) as exc:
        raise _usage(exc) from None
    from p2pdiag.render import lab as view

    if as_json:
        print(view.dumps(status.to_dict()))
    else:
        view.render_up(lab, topology, status, sys.stdout)
    return int(ExitCode.OK)


@lab_app.command(cls=common.Command)
def down(
    lab_id: str | None = typer.Argument(None, metavar="[LAB_ID]", help="The lab to remove (default: the only "
                                           "one there is)."),
    all_labs: bool = typer.Option(False, "--all", help="Remove every lab not owned by a live process, detached "
                                  "ones included."),
) -> int:
    """Remove a lab: its processes, namespaces, veths and state."""
    _require_root()
    from p2pdiag.lab import Lab, LabError

    try:
        if all_labs:
            if lab_id:
                raise UsageError("give a LAB_ID or --all, not both")
            removed = Lab.cleanup_leftovers(include_detached=True)
            print(f"removed {len(removed)} lab(s){': ' + ', '.join(removed) if removed else ''}")
            return int(ExitCode.OK)
        if lab_id is None:
            labs = [info for info in Lab.list_labs() if not info.owner_alive]
            if len(labs) != 1:
                found = ", ".join(info.lab_id for info in labs) or "none"
                raise UsageError(f"give the LAB_ID to remove (labs not in use: {found}), or --all")
            lab_id = labs[0].lab_id
        else:
            info = next((i for i in Lab.list_labs() if i.lab_id == lab_id), None)
            if info is None:
                raise UsageError(f"no lab {lab_id!r} (see p2pdiag lab status)")
            if info.owner_alive and not info.detached:
                raise UsageError(f"lab {lab_id} belongs to a running process (pid {info.owner_pid}); it "
                                 "removes it when it ends")
        Lab.attach(lab_id).down()
    except LabError as exc:
        raise _usage(exc) from None
    print(f"lab {lab_id} removed")
    return int(ExitCode.OK)


@lab_app.command(cls=common.Command)
def status(
    lab_id: str | None = typer.Argument(None, metavar="[LAB_ID]", help="One lab in detail (default: all)."),
    as_json: bool = common.JsonOpt,
) -> int:
    """The labs on this machine: who owns them, and each one's hosts, addresses and coturn."""
    _require_root()
    from p2pdiag.lab import Lab, LabError

    try:
        infos = [i for i in Lab.list_labs() if lab_id is None or i.lab_id == lab_id]
        if lab_id is not None and not infos:
            raise UsageError(f"no lab {lab_id!r}")
        labs = []
        for info in infos:
            entry: dict[str, Any] = {"lab_id": info.lab_id, "owner_pid": info.owner_pid,
                                     "owner_alive": info.owner_alive, "detached": info.detached,
                                     "leftover": info.leftover, "namespaces": list(info.namespaces)}
            try:
                entry["status"] = Lab.attach(info.lab_id).status().to_dict()
            except LabError:
                entry["status"] = None  # namespaces without a state file: a crash mid-build
            labs.append(entry)
    except LabError as exc:
        raise _usage(exc) from None
    from p2pdiag.render import lab as view

    if as_json:
        print(view.dumps({"labs": labs}))
    else:
        view.render_status(labs, sys.stdout)
    return int(ExitCode.OK)


KeepOpt = typer.Option(None, "--keep", metavar="DIR", help="Keep the traces and peer logs in DIR (default: a "
                       "temporary directory, kept only when the scenario fails).")


@lab_app.command(cls=common.Command)
def run(
    scenario: str = typer.Argument(..., metavar="SCENARIO", show_default=False,
                                   help="A scenario name (p2pdiag/lab/scenarios/) or a .toml/.json file."),
    as_json: bool = common.JsonOpt,
    keep: Path | None = KeepOpt,
) -> int:
    """Build the scenario's lab, run the relay, the listener and `p2pdiag dial`, check the verdict, tear down.

    The listener in LAN b is the scenario's listener.implementation: p2pdiag (`p2pdiag listen`), js
    (js-libp2p in Node) or chromium (js-libp2p in headless Chromium, reserving over the relay's /ws).

    Exit 0: PASS. Exit 6: FAIL, the verdict is not the one the scenario expects. Exit 2: a problem to fix
    first (not root, a missing package, a bad scenario file). Exit 1: a bug in p2pdiag.
    """
    _require_root()
    from p2pdiag.lab import LabError
    from p2pdiag.lab.scenario import ScenarioError, find_scenario, run_scenario

    try:
        sc = find_scenario(scenario)
    except ScenarioError as exc:
        raise _usage(exc) from None
    workdir = keep or Path(tempfile.mkdtemp(prefix=f"p2pdiag-lab-{sc.name}-"))

    def progress(line: str) -> None:
        print(f"lab: {line}", file=sys.stderr, flush=True)

    progress(f"scenario {sc.name}: {sc.description}")
    try:
        result = run_scenario(sc, workdir, progress)
    except (LabError, ScenarioError) as exc:
        progress(f"peer logs kept in {workdir}")
        raise _usage(exc) from None
    except BaseException:  # Ctrl-C, SIGTERM: the lab is gone already; so are its temporary logs
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    # printed before the temporary directory goes: the result reads the dial's trace from it
    from p2pdiag.render import lab as view

    if as_json:
        print(view.dumps(result.to_dict()))
    else:
        view.render_result(result, sys.stdout)
    if keep is None and result.passed:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not result.passed:
        progress(f"traces and peer logs kept in {workdir}")
    return int(ExitCode.OK if result.passed else ExitCode.SCENARIO_FAILED)
