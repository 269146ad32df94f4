"""Exceptions that become one-line messages and exit codes in cli.py, the only place that does so."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a multiaddr, peer id or option. Exit code 2."""


class TraceFileError(Exception):
    """A trace file that cannot be read; the message names the file and the line. Exit code 2.

    Defined here, not in trace/file.py, so that cli.py can catch it without importing the trace
    schema on every command (`--help` included); trace/file.py re-exports it."""
