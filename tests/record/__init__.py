"""The scripts that re-record tests/traces/<topic>/ from real runs, one per topic (see tests/README.md).

A package so that a test can reuse a recorder's runner: `from record.network import run_case`.
"""
