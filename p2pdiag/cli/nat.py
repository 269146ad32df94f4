"""`p2pdiag nat`: this network's NAT, probed in the style of RFC 5780.

The probe runs through probes/run.py (signals, no trace file), diagnosis judges its tests and
decides the exit code, render/nat.py shows the judgement.
"""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

import typer

from p2pdiag.cli import common
from p2pdiag.errors import Interrupted, UsageError

if TYPE_CHECKING:
    from p2pdiag.trace.recorder import Recorder
    from p2pdiag.wire.stun import NatTest


def _resolve(url: str) -> tuple[str, int]:
    from p2pdiag.wire.stun import parse_stun_url

    try:
        host, port = parse_stun_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0], port
    except socket.gaierror as exc:
        raise UsageError(f"--stun {url}: cannot resolve {host} ({exc.strerror})") from None


def nat(
    stun: list[str] | None = typer.Option(None, "--stun", metavar="URL", help="A STUN server (stun:HOST:PORT); "
                                             "repeatable. One with RFC 5780 OTHER-ADDRESS (coturn with two IPs and "
                                             "alt-listening-port) gives mapping and filtering; without it, a second "
                                             "server gives the mapping only."),
    timeout: float = common.seconds_option(1.5, "--test-timeout", help="How long one test waits for its answer "
                                           "(retransmitting from 0.1 s)."),
    as_json: bool = common.JsonOpt,
) -> int:
    """Probe this network's NAT: mapping and filtering behaviour, in the style of RFC 5780."""
    if not stun:
        raise UsageError("give at least one --stun URL (two, or one with RFC 5780 OTHER-ADDRESS, to tell the mapping)")
    servers = [_resolve(u) for u in stun]
    from p2pdiag.diagnosis.nat import nat_behaviour
    from p2pdiag.probes.run import interrupted, run, watch_signals
    from p2pdiag.render import nat as view
    from p2pdiag.trace.recorder import Recorder

    tests: list[NatTest] = []

    async def body(rec: Recorder) -> None:
        from p2pdiag.probes.nat import probe

        tests.extend(await probe(servers, timeout))

    rec = Recorder()  # no trace: the tests themselves are the result
    watch_signals(rec)
    run(body, rec, None, quiet=False)
    if interrupted(rec):
        raise Interrupted("interrupted")
    verdict = nat_behaviour(tests)
    if as_json:
        print(view.dumps(view.document(stun, verdict, tests)))
    else:
        view.render(verdict, sys.stdout)
    sys.stdout.flush()
    return int(verdict.exit_code)
