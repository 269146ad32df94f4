"""`p2pdiag watch`: probe a fleet until stopped; changes as events, figures as Prometheus metrics.

Only typer is imported at module level: `p2pdiag --help` must not load py-libp2p, trio or aiortc.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import typer

from p2pdiag import __version__
from p2pdiag.cli import common
from p2pdiag.errors import UsageError

DEFAULT_INTERVAL_S = 30.0


def watch(
    config: Path | None = typer.Argument(None, metavar="[CONFIG.toml]", show_default=False,
                                         help="What to watch (docs/watch.md). Or the short form's options."),
    relay: list[str] = typer.Option([], "--relay", metavar="RELAY_ADDR", show_default=False,
                                    help="Short form: a relay to watch (and reserve on); repeatable."),
    peer: list[str] = typer.Option([], "--peer", metavar="PEER", show_default=False,
                                   help="Short form: a peer: its direct address …/p2p/ID, a relayed address, or a "
                                        "peer id dialed through every --relay; repeatable."),
    topic: str | None = typer.Option(None, "--topic", metavar="TOPIC", help="Short form: send GossipSub canaries "
                                     "on TOPIC between light peers attached to the first two --peer addresses."),
    upgrade: bool = typer.Option(False, "--upgrade", help="Short form: also run the whole WebRTC upgrade (`dial`) "
                                 "to each peer reachable through a relay, every 600 s."),
    hold: float | None = common.seconds_option(None, "--hold", help="Short form: hold each relayed circuit this "
                                               "many seconds after identify, pinging, to see the relay cut it."),
    interval: float | None = common.seconds_option(None, "--interval", help="Short form: seconds between two "
                                                   f"probes of a target (default {DEFAULT_INTERVAL_S:g})."),
    timeout: float | None = common.seconds_option(None, "--timeout", help="Short form: seconds one probe may "
                                                  "take (default 10, and below the interval)."),
    metrics: str | None = typer.Option(None, "--metrics", metavar="HOST:PORT", help="Serve /metrics and "
                                       "/probe (blackbox-style) here; overrides the config's."),
    shard: str | None = typer.Option(None, "--shard", metavar="K/N", help="Watch only shard K of N: N instances "
                                     "with the same config cover each target exactly once."),
    duration: float | None = common.seconds_option(None, "--duration", help="Stop after this many seconds "
                                                   "(default: until Ctrl-C or SIGTERM)."),
    linger: float = common.seconds_option(0.0, "--linger", zero_ok=True, help="After stopping, serve the last "
                                          "/metrics this many seconds more, for a last scrape."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object a line on stdout: each change, then the "
                                 "history's verdict."),
    trace: Path | None = common.TraceOpt,
) -> int:
    """Probe relays, peers and a GossipSub mesh on intervals until stopped: when did it stop, and what stopped?"""
    from p2pdiag.watch import config as cfg

    short = bool(relay or peer or topic or upgrade or interval is not None or timeout is not None or hold is not None)
    if config is not None and short:
        raise UsageError("give either a CONFIG file or the short form's options (--relay, --peer, --topic, "
                         "--upgrade, --hold, --interval, --timeout), not both")
    if config is not None:
        conf = cfg.load(config)
    else:
        conf = cfg.from_options(relay, peer, topic, interval if interval is not None else DEFAULT_INTERVAL_S,
                                timeout, upgrade, hold or 0.0)
    if metrics is not None:
        conf = cfg.replace(conf, metrics=cfg.parse_listen(metrics))
    chosen = cfg.parse_shard(shard) if shard is not None else conf.shard
    conf = conf.sharded(chosen)
    options: dict[str, Any] = {"config": str(config) if config else None, "relay": relay, "peer": peer,
                               "topic": topic, "upgrade": upgrade, "hold_s": hold, "interval_s": interval,
                               "timeout_s": timeout,
                               "metrics": str(conf.metrics) if conf.metrics else None,
                               "shard": str(chosen) if chosen else None, "duration_s": duration, "linger_s": linger}
    return run(conf, options, trace, as_json, duration, linger)


def run(conf: Any, options: dict[str, Any], trace_path: Path | None, as_json: bool, duration: float | None,
        linger: float) -> int:
    from p2pdiag.diagnosis.watch import History, verdict_of
    from p2pdiag.probes.run import run as run_body
    from p2pdiag.probes.run import watch_signals
    from p2pdiag.render.json import verdict_document
    from p2pdiag.trace.file import Header
    from p2pdiag.trace.recorder import Recorder
    from p2pdiag.watch import sinks

    header = Header(command="watch", options=options,
                    started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                    p2pdiag_version=__version__, libraries=common.libraries())
    rec = Recorder(keep=False)  # hours of probes: the history below is what is kept
    history = History()
    rec.add_sink(history.add)
    out = common.TraceOutput(trace_path, header) if trace_path is not None else None
    if out is not None:
        rec.add_sink(out.write_event)
    watch_signals(rec)
    live: list[Any] = []
    if as_json:
        shown: list[Any] = [sinks.JsonLinesSink()]
    elif sys.stdout.isatty():
        live.append(sinks.LiveTable(conf.targets, common.console()))
        shown = live
    else:
        shown = [sinks.LinesSink()]

    def on_listening(where: str) -> None:
        print(f"p2pdiag watch: /metrics and /probe on http://{where}/", file=sys.stderr, flush=True)

    print(f"p2pdiag watch: {len(conf.targets)} target(s)" + (f", shard {conf.shard}" if conf.shard else "")
          + "; Ctrl-C or SIGTERM stops it", file=sys.stderr, flush=True)

    async def body(rec: Recorder) -> None:
        import gc

        from p2pdiag.probes import net
        from p2pdiag.watch import gossip, hold, probes  # noqa: F401  (imported now: see below)
        from p2pdiag.watch.app import watch_fleet

        net.load_libp2p()

        # Hours of probes: the modules' objects (py-libp2p's are most of a 100 MB process) never
        # die, and every full collection walked them all, holding the interpreter for tens of ms
        # (a /metrics answer waited). Frozen, the collector walks what the probes made.
        gc.collect()
        gc.freeze()
        await watch_fleet(conf, rec, [sinks.TraceSink(rec), *shown], duration, linger, on_listening)

    try:
        if live:
            with live[0]:
                run_body(body, rec, None)
        else:
            run_body(body, rec, None)
    finally:
        if out is not None:
            out.close()
    verdict = verdict_of(history)
    if as_json:
        doc = verdict_document(verdict, str(trace_path) if trace_path else None)
        print(_one_line(doc))
    else:
        from p2pdiag.render.terminal import render

        render(verdict, common.console(), str(trace_path) if trace_path else None)
    sys.stdout.flush()
    return int(verdict.exit_code)


def _one_line(doc: dict[str, Any]) -> str:
    import json

    return json.dumps({"type": "verdict", **doc}, ensure_ascii=False)
