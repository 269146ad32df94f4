"""Hypothesis profiles for p2pdiag's fuzz suite.

CI runs a fixed, small, reproducible budget (`ci`: 200 examples a test, derandomized, no example
database written into the tree). By hand, `P2PDIAG_FUZZ=long python3 -m pytest tests/fuzz` runs
20,000 examples a test with fresh randomness (P2PDIAG_FUZZ_EXAMPLES=N for another number).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# capsys is read and emptied by each example itself, so sharing it across examples is safe.
SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None,
                          suppress_health_check=SUPPRESSED)
settings.register_profile("long", max_examples=int(os.environ.get("P2PDIAG_FUZZ_EXAMPLES", "20000")), deadline=None,
                          database=None, suppress_health_check=SUPPRESSED)
settings.load_profile("long" if os.environ.get("P2PDIAG_FUZZ") == "long" else "ci")
