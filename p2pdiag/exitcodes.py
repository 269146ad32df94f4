"""Exit codes, one meaning each (docs/exit-codes.md). Imports nothing heavy: `--help` lists them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # upgraded to a direct connection, or the command did what it was asked
    TOOL_ERROR = 1  # a bug in p2pdiag: please report it with the trace
    USAGE = 2  # bad input: multiaddr, peer id, option or trace file
    RELAYED_ONLY = 3  # the peer was reached through the relay, but no direct connection
    UNREACHABLE = 4  # the peer was not reached at all (relay down, refused, no reservation...)
    RELAY_PROBLEM = 5  # relay-check: at least one relay failed a check (or could not be checked)
    SCENARIO_FAILED = 6  # lab run: the verdict is not the one the scenario expects
    FLEET_PROBLEM = 7  # watch: a fault (a peer down, a reservation lost …) was still open when it ended
    INTERRUPTED = 130  # Ctrl-C, SIGTERM, or the overall --timeout ran out; partial trace kept


def describe() -> str:
    return "; ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode)
