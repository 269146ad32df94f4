"""Hypothesis profiles for p2pdiag's fuzz suite.

CI runs a fixed, small, reproducible budget (`ci`: 200 examples a test, derandomized, no example
database written into the tree). By hand, `P2PDIAG_FUZZ=long python3 -m pytest tests/fuzz` runs
20,000 examples a test with fresh randomness.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=20_000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("long" if os.environ.get("P2PDIAG_FUZZ") == "long" else "ci")
