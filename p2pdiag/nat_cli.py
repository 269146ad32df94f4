"""`p2pdiag nat`: the command, added to the app by `register(app)`.

Only typer is imported at module level: `p2pdiag --help` must not load trio.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from typing import Optional

import typer

from p2pdiag.errors import UsageError
from p2pdiag.exitcodes import ExitCode

SCHEMA_VERSION = 1


def register(app: typer.Typer) -> None:
    app.command(name="nat")(nat)


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
    stun: Optional[list[str]] = typer.Option(None, "--stun", metavar="URL", help="A STUN server (stun:HOST:PORT); "
                                             "repeatable. One with RFC 5780 OTHER-ADDRESS (coturn with two IPs and "
                                             "alt-listening-port) gives mapping and filtering; without it, a second "
                                             "server gives the mapping only."),
    timeout: float = typer.Option(1.5, "--test-timeout", metavar="SECONDS",
                                  help="How long one test waits for its answer (retransmitting from 0.1 s)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (schema_version 1) on stdout."),
) -> int:
    """Probe this network's NAT: mapping and filtering behaviour, in the style of RFC 5780."""
    import json

    import trio

    from p2pdiag.cli import _check_positive
    from p2pdiag.diagnosis.network import NO_UDP, nat_behaviour
    from p2pdiag.probes.nat import probe

    if not stun:
        raise UsageError("give at least one --stun URL (two, or one with RFC 5780 OTHER-ADDRESS, to tell the mapping)")
    _check_positive("--test-timeout", timeout)
    servers = [_resolve(u) for u in stun]
    tests = trio.run(probe, servers, timeout)
    verdict = nat_behaviour(tests)
    if as_json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": "nat", "stun": stun,
                          "mapping": verdict.mapping, "filtering": verdict.filtering,
                          "public": list(verdict.public) if verdict.public else None,
                          "evidence": list(verdict.evidence), "settle": verdict.settle,
                          "tests": [dataclasses.asdict(t) for t in tests]}))
    else:
        print(f"Mapping:   {verdict.mapping}")
        print(f"Filtering: {verdict.filtering}")
        if verdict.public:
            print(f"Public address (test I): {verdict.public[0]}:{verdict.public[1]}")
        for line in verdict.evidence:
            print(f"  evidence: {line}")
        if verdict.settle:
            print(f"  to tell more: {verdict.settle}")
    sys.stdout.flush()
    return ExitCode.UNREACHABLE if verdict.mapping == NO_UDP else ExitCode.OK  # no STUN answer at all
