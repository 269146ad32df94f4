"""The command line. The one place where exceptions become exit codes and one-line messages.

Heavy libraries (py-libp2p, aiortc, trio) are imported inside the commands that need them, so
`p2pdiag --help` and `p2pdiag analyze` start fast (bench/startup.py measures it).
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from p2pdiag import __version__
from p2pdiag.errors import TraceFileError, UsageError
from p2pdiag.exitcodes import ExitCode, describe

if TYPE_CHECKING:
    from p2pdiag.diagnosis.model import Verdict
    from p2pdiag.trace.file import Trace
    from p2pdiag.trace.recorder import Recorder

app = typer.Typer(
    name="p2pdiag",
    help="Why did a libp2p connection not become direct, and does the relayed connection still hold?"
    f"\n\nExit codes: {describe()}.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DEFAULT_BUDGET_S = 60.0

JsonOpt = typer.Option(False, "--json", help="Print one JSON document (schema_version 1) on stdout.")
TraceOpt = typer.Option(None, "--trace", help="Write the trace (JSON Lines) to this file, line by line.")
StepTimeoutOpt = typer.Option(
    [], "--step-timeout", metavar="NAME=SECONDS",
    help="Override one step's timeout (relay-connect, identify, hop, reserve, secure, ping, stop, transfer).",
)


StunOpt = typer.Option([], "--stun", metavar="URL", help="A STUN server (stun:HOST:PORT); repeatable. None by default.")
TurnOpt = typer.Option([], "--turn", metavar="URL", help="A TURN server (turn:HOST:PORT[?transport=udp|tcp]); "
                       "needs --turn-user and --turn-credential.")
TurnUserOpt = typer.Option(None, "--turn-user", help="TURN username.")
TurnCredentialOpt = typer.Option(None, "--turn-credential", help="TURN credential (never written to the trace).")
IcePolicyOpt = typer.Option("all", "--ice-policy", help="ICE transport policy: all, or relay (TURN only).")
IceAddressOpt = typer.Option([], "--ice-address", metavar="ADDR", help="Gather host candidates only on this local "
                             "address (repeatable; 127.0.0.1 is always added). Default: every interface.")
IceTimeoutOpt = typer.Option(None, "--ice-timeout", help="Seconds for ICE connectivity checks (default 4, "
                             "under js-libp2p's 6 s).")
StunTimeoutOpt = typer.Option(None, "--stun-timeout", help="Seconds to wait for each STUN answer while gathering "
                              "(default 2): no answer by then ends gathering without that srflx candidate.")


def _ice(stun: list[str], turn: list[str], turn_user: str | None, turn_credential: str | None,
         policy: str, ice_timeout: float | None, addresses: list[str],
         stun_timeout: float | None = None) -> tuple[Any, Any]:
    """The ICE servers the user gave (none by default) and the upgrade's timeouts."""
    from p2pdiag.webrtc.config import IceConfig, TurnServer, UpgradeTimeouts

    if turn and (turn_user is None or turn_credential is None):
        raise UsageError("--turn needs --turn-user and --turn-credential")
    _check_positive("--ice-timeout", ice_timeout)
    _check_positive("--stun-timeout", stun_timeout)
    try:
        ice = IceConfig(stun=tuple(stun), turn=tuple(TurnServer(u, turn_user or "", turn_credential or "")
                                                     for u in turn), policy=policy,
                        host_addresses=tuple(a for a in addresses if a != "127.0.0.1") if addresses else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if policy == "relay" and not turn:
        raise UsageError("--ice-policy relay uses only TURN candidates: give --turn")
    timeouts = UpgradeTimeouts()
    if ice_timeout is not None:
        timeouts = dataclasses.replace(timeouts, ice=ice_timeout)
    if stun_timeout is not None:
        timeouts = dataclasses.replace(timeouts, stun=stun_timeout)
    return ice, timeouts


def _version(value: bool) -> None:
    if value:
        print(f"p2pdiag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    pass


# --- shared plumbing ---------------------------------------------------------------------------


def _libraries() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("libp2p", "trio", "aiortc", "aioice", "multiaddr"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _step_timeouts(overrides: list[str]) -> Any:
    from p2pdiag.probes.timeouts import StepTimeouts, parse_override

    parsed: dict[str, float] = {}
    for text in overrides:
        try:
            name, seconds = parse_override(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        parsed[name] = seconds
    return StepTimeouts().with_overrides(parsed)


def _check_positive(name: str, value: float | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise UsageError(f"{name} must be {'zero or more' if allow_zero else 'more than zero'} seconds, got {value:g}")


def _open_trace(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--trace {path}: cannot write ({exc.strerror})") from None


def _run_probe(command: str, options: dict[str, Any], body: Any, trace_path: Path | None,
               budget_s: float | None, progress: bool) -> Trace:
    """Run a probe body under trio, streaming the trace to --trace; return the trace."""
    from p2pdiag.probes.run import run
    from p2pdiag.render.progress import ProgressSink
    from p2pdiag.trace.file import Header, Trace, TraceWriter
    from p2pdiag.trace.recorder import Recorder

    header = Header(command=command, options=options,
                    started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                    p2pdiag_version=__version__, libraries=_libraries())
    rec = Recorder()
    out = _open_trace(trace_path)
    try:
        if out is not None:
            writer = TraceWriter(out)
            writer.write_header(header)
            rec.add_sink(writer.write_event)
        if progress:
            rec.add_sink(ProgressSink(sys.stderr))
        run(body, rec, budget_s)
    finally:
        if out is not None:
            out.close()
    return Trace(header=header, events=rec.events)


def _show(verdict: Verdict, as_json: bool, trace_path: Path | None) -> int:
    from p2pdiag.render.json import dumps, verdict_document

    if as_json:
        print(dumps(verdict_document(verdict, str(trace_path) if trace_path else None)))
    else:
        from rich.console import Console

        if verdict.command == "relay-check":
            from p2pdiag.render.relaycheck import render
        else:
            from p2pdiag.render.terminal import render

        render(verdict, Console(highlight=False, soft_wrap=True), str(trace_path) if trace_path else None)
    return int(verdict.exit_code)


def _progress_wanted() -> bool:
    """One progress line per event on stderr, for a person watching a terminal."""
    return sys.stderr.isatty()


# --- commands ----------------------------------------------------------------------------------


@app.command()
def dial(
    target: str = typer.Argument(..., help="RELAY_ADDR/p2p-circuit[/webrtc]/p2p/PEER, or a PEER id with --relay."),
    relay: list[str] = typer.Option([], "--relay", help="A relay's address (/ip4/…/tcp/…/p2p/ID); repeatable."),
    as_json: bool = JsonOpt,
    trace: Optional[Path] = TraceOpt,
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Overall budget for the whole run, in "
                                            "seconds (default: 60, plus --hold)."),
    step_timeout: list[str] = StepTimeoutOpt,
    hold: float = typer.Option(0.0, "--hold", help="Keep the relayed connection this many seconds, pinging, "
                               "to watch for the relay's limits."),
    ping_interval: float = typer.Option(1.0, "--ping-interval", help="Seconds between pings while holding."),
    no_upgrade: bool = typer.Option(False, "--no-upgrade", help="Check the relayed connection only."),
    stun: list[str] = StunOpt,
    turn: list[str] = TurnOpt,
    turn_user: Optional[str] = TurnUserOpt,
    turn_credential: Optional[str] = TurnCredentialOpt,
    ice_policy: str = IcePolicyOpt,
    ice_timeout: Optional[float] = IceTimeoutOpt,
    ice_address: list[str] = IceAddressOpt,
    stun_timeout: Optional[float] = StunTimeoutOpt,
) -> int:
    """Dial a peer through a relay, try the WebRTC upgrade, and diagnose every step."""
    from p2pdiag.targets import parse_target

    _check_positive("--timeout", timeout)
    _check_positive("--hold", hold, allow_zero=True)
    _check_positive("--ping-interval", ping_interval)
    if timeout is None:
        timeout = DEFAULT_BUDGET_S + hold
    elif hold >= timeout:
        raise UsageError(f"--hold {hold:g} s does not fit in --timeout {timeout:g} s; give a larger --timeout")
    parsed = parse_target(target, relay)
    timeouts = _step_timeouts(step_timeout)
    ice, upgrade_timeouts = _ice(stun, turn, turn_user, turn_credential, ice_policy, ice_timeout, ice_address,
                                 stun_timeout)
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.probes.dial import DialOptions, dial as run_dial

    opts = DialOptions(target=parsed, timeouts=timeouts, hold_s=hold, ping_interval_s=ping_interval,
                       upgrade=not no_upgrade, ice=ice, upgrade_timeouts=upgrade_timeouts)
    options = {"target": target, "relays": relay, "timeout_s": timeout, "step_timeouts_s": timeouts.as_dict(),
               "hold_s": hold, "ping_interval_s": ping_interval, "upgrade": not no_upgrade,
               "ice": ice.as_dict(), "upgrade_timeouts_s": dataclasses.asdict(upgrade_timeouts)}

    async def body(rec: Recorder) -> None:
        await run_dial(opts, rec)

    result = _run_probe("dial", options, body, trace, timeout, _progress_wanted())
    return _show(diagnose(result), as_json, trace)


@app.command()
def listen(
    relay: list[str] = typer.Option(..., "--relay", help="A relay to reserve a slot on; repeatable."),
    identity: Optional[Path] = typer.Option(None, "--identity", help="Key file for a stable peer id "
                                            "(created, mode 0600, if missing). Default: a fresh key each run."),
    as_json: bool = JsonOpt,
    trace: Optional[Path] = TraceOpt,
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Stop after this many seconds "
                                            "(default: run until Ctrl-C)."),
    step_timeout: list[str] = StepTimeoutOpt,
    no_upgrade: bool = typer.Option(False, "--no-upgrade", help="Do not answer WebRTC upgrades."),
    stun: list[str] = StunOpt,
    turn: list[str] = TurnOpt,
    turn_user: Optional[str] = TurnUserOpt,
    turn_credential: Optional[str] = TurnCredentialOpt,
    ice_policy: str = IcePolicyOpt,
    ice_timeout: Optional[float] = IceTimeoutOpt,
    ice_address: list[str] = IceAddressOpt,
    stun_timeout: Optional[float] = StunTimeoutOpt,
) -> int:
    """Reserve a slot on relays, print the addresses to dial, and trace every inbound attempt."""
    from p2pdiag.targets import parse_relay

    _check_positive("--timeout", timeout)
    relays = tuple(parse_relay(r) for r in relay)
    timeouts = _step_timeouts(step_timeout)
    ice, upgrade_timeouts = _ice(stun, turn, turn_user, turn_credential, ice_policy, ice_timeout, ice_address,
                                 stun_timeout)
    key_pair = None
    if identity is not None:
        from p2pdiag.identity import load_or_create

        key_pair = load_or_create(identity)
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.probes.listen import Listener, ListenOptions

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

    def on_inbound_ended(cid: str) -> None:
        """Each inbound attempt's own steps, diagnosed from the trace so far, as it ends."""
        from rich.console import Console

        from p2pdiag.diagnosis.listen import attempt_steps
        from p2pdiag.render.terminal import render_steps
        from p2pdiag.trace.file import Header, Trace

        so_far = diagnose(Trace(Header("listen", options, "", __version__), rec_holder[0].events))
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        console.print(f"[bold]{cid} ended[/bold]")
        render_steps(attempt_steps(so_far, cid), console)
        for loop in so_far.facts.get("reconnect_loops", []):
            if cid in loop["connection_ids"]:
                console.print(f"[bold yellow]reconnect loop:[/bold yellow] round {loop['connection_ids'].index(cid) + 1} "
                              f"from {loop['peer_id']}, one every {loop['period_s']:.1f} s")

    async def body(rec: Recorder) -> None:
        rec_holder.append(rec)
        await Listener(ListenOptions(relays=relays, timeouts=timeouts, on_ready=on_ready,
                                     on_inbound_ended=on_inbound_ended, upgrade=not no_upgrade, ice=ice,
                                     upgrade_timeouts=upgrade_timeouts), rec, key_pair).run()

    result = _run_probe("listen", options, body, trace, timeout, _progress_wanted())
    return _show(diagnose(result), as_json, trace)


@app.command()
def analyze(
    trace_file: Path = typer.Argument(..., metavar="TRACE", help="A trace written by --trace."),
    as_json: bool = JsonOpt,
) -> int:
    """Diagnose a saved trace offline: the same verdict the live run gave."""
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.trace.file import load

    return _show(diagnose(load(trace_file)), as_json, None)


@app.command()
def demo(
    as_json: bool = JsonOpt,
    trace: Optional[Path] = TraceOpt,
    hold: float = typer.Option(0.0, "--hold", help="Keep the relayed connection this many seconds."),
    relay_duration: int = typer.Option(120, "--relay-duration", help="The embedded relay's circuit duration limit, s."),
    relay_data: int = typer.Option(131072, "--relay-data", help="The embedded relay's circuit data limit, bytes."),
    timeout: float = typer.Option(60.0, "--timeout", help="Overall budget, in seconds."),
) -> int:
    """Run a relay and a listening peer on loopback, dial through them, and show the diagnosis."""
    _check_positive("--timeout", timeout)
    _check_positive("--hold", hold, allow_zero=True)
    if relay_duration <= 0 or relay_data <= 0:
        raise UsageError("--relay-duration and --relay-data must be more than zero")
    from p2pdiag.demo import LOOPBACK_ONLY, run_demo
    from p2pdiag.diagnosis import diagnose

    options = {"hold_s": hold, "relay_duration_s": relay_duration, "relay_data_bytes": relay_data,
               "timeout_s": timeout, "ice": LOOPBACK_ONLY.as_dict()}

    async def body(rec: Recorder) -> None:
        await run_demo(rec, hold_s=hold, relay_duration_s=relay_duration, relay_data_bytes=relay_data)

    result = _run_probe("demo", options, body, trace, timeout, _progress_wanted())
    return _show(diagnose(result), as_json, trace)


from p2pdiag.relaycheck_cli import register as _register_relay_check  # noqa: E402  (typer only)

_register_relay_check(app)
from p2pdiag.nat_cli import register as _register_nat  # noqa: E402  (typer only)

_register_nat(app)
from p2pdiag.lab_cli import register as _register_lab  # noqa: E402  (typer only)

_register_lab(app)


# --- the one place exceptions become exit codes ------------------------------------------------


def _fail(message: str, code: ExitCode) -> int:
    print(f"p2pdiag: error: {message}", file=sys.stderr)
    if "--json" in sys.argv[1:]:
        from p2pdiag.render.json import dumps, error_document

        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
        print(dumps(error_document(command, int(code), message)))
    return int(code)


def _is_click_error(exc: BaseException, name: str) -> bool:
    """typer may vendor its own click; match click's exception classes by name, not identity."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, standalone_mode=False, prog_name="p2pdiag")
        code = int(result) if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        code = _fail("interrupted", ExitCode.INTERRUPTED)
    except (UsageError, TraceFileError) as exc:
        code = _fail(str(exc), ExitCode.USAGE)
    except KeyboardInterrupt:
        code = _fail("interrupted", ExitCode.INTERRUPTED)
    except Exception as exc:
        if _is_click_error(exc, "NoArgsIsHelpError"):
            print(exc.ctx.get_help())  # type: ignore[attr-defined]
            code = int(ExitCode.OK)
        elif _is_click_error(exc, "UsageError"):
            code = _fail(exc.format_message().replace("\n", " "), ExitCode.USAGE)  # type: ignore[attr-defined]
        else:  # a bug: say so in one line, and where to look
            code = _fail(f"internal error ({type(exc).__name__}: {exc}); please report it with the trace "
                         "(set P2PDIAG_DEBUG=1 for the traceback)", ExitCode.TOOL_ERROR)
            import os

            if os.environ.get("P2PDIAG_DEBUG"):
                raise
    sys.exit(code)
