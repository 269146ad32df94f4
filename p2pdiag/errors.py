"""Exceptions that become one-line messages and exit codes in cli.py, the only place that does so."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a multiaddr, peer id or option. Exit code 2."""
