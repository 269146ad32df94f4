"""Exceptions that become one-line messages and exit codes in `p2pdiag.cli.main`, the only place that does so."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a multiaddr, peer id or option. Exit code 2."""


class TraceFileError(Exception):
    """A trace file that cannot be read; the message names the file and the line. Exit code 2.

    Defined here, not in trace/file.py, so that the CLI can catch it without importing the trace
    schema on every command (`--help` included); trace/file.py re-exports it."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped a command that has no verdict to show (`nat`). Exit code 130."""
