"""Issue 10, part 1: a huge /p2p/ value (or a huge line) is refused at the door, in one line, fast.

base58 decoding is quadratic: 110,000 characters of peer id kept `dial` busy for minutes before the
lengths were capped (p2pdiag/targets.py). Each entry point runs as a user runs it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from support.hostile import run_measured

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
LONG = "z" * 110_000
LONG_RELAY = f"/ip4/127.0.0.1/tcp/9/p2p/{LONG}"
TIMEOUT_S = "3"
# Start-up alone can take seconds on a loaded machine (the parse itself: test_targets_caps.py).
WELL_WITHIN_S = 10.0  # the quadratic decoding took minutes; load made start-up vary by seconds

ENTRY_POINTS = {
    "dial-target": ["dial", f"{LONG_RELAY}/p2p-circuit/p2p/Q"],
    "dial-peer-id": ["dial", LONG, "--relay", f"/ip4/127.0.0.1/tcp/9/p2p/{RELAY_ID}"],
    "dial-relay": ["dial", PEER_ID, "--relay", LONG_RELAY],
    "listen-relay": ["listen", "--relay", LONG_RELAY],
    "relay-check": ["relay-check", LONG_RELAY],
    "relay-check-circuit": ["relay-check", f"/ip4/127.0.0.1/tcp/9/p2p/{RELAY_ID}/p2p-circuit/p2p/{LONG}"],
}


@pytest.fixture(scope="module")
def runs():
    with ThreadPoolExecutor(2) as pool:
        results = pool.map(lambda args: run_measured(*args, "--timeout", TIMEOUT_S), ENTRY_POINTS.values())
        return dict(zip(ENTRY_POINTS, results, strict=True))


@pytest.fixture(scope="module")
def baseline():
    """The same command with a short bad address: what start-up and refusal cost on this machine now."""
    return run_measured("dial", "/ip4/127.0.0.1/tcp/9/p2p/zz/p2p-circuit/p2p/Q", "--timeout", TIMEOUT_S).wall_s


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_long_peer_id_is_refused_in_one_line(runs, baseline, name):
    m = runs[name]
    assert m.returncode == 2, m.describe()
    lines = m.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pdiag: error: "), m.describe()
    assert "longer than" in lines[0] and len(lines[0]) < 400, lines[0][:500]
    assert m.wall_s < baseline + WELL_WITHIN_S, f"{m.wall_s:.1f} s against {baseline:.1f} s for a short one"


def test_a_5mb_line_in_from_file_is_refused_fast(tmp_path):
    listing = tmp_path / "relays.txt"
    listing.write_text(f"/ip4/127.0.0.1/tcp/9/p2p/{'z' * 5_000_000}\n")
    m = run_measured("relay-check", "--from-file", str(listing), "--timeout", TIMEOUT_S)
    # the file is over --from-file's 1 MiB cap: refused before any line is parsed (it once took seconds
    # and repeated the 5 MB line in the report)
    assert m.returncode == 2 and "Traceback" not in m.stderr, m.describe()
    assert len(m.stdout) + len(m.stderr) < 64 * 1024, f"{len(m.stdout)} bytes of output"
    assert m.wall_s < 15, f"{m.wall_s:.1f} s"
