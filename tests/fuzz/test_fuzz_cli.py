"""Fuzzing the command line in-process: every run here fails at the door (no network, no files
written), and must say so with exit 2 (or 0 for help), never 1 and never a traceback.

The targets and relays drawn are never valid, so no case gets as far as a probe.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pdiag.cli import main

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
ALLOWED_EXITS = {0, 2, 3, 4, 5}

numbers = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "-1", "0", "-0", "1e-320", "", " ", "1_0", "0x10",
                     "3" * 400, "٣"]),
    st.floats().map(repr),
    st.text(max_size=12),
)
bad_targets = st.one_of(
    st.sampled_from([f"/ip4/127.0.0.1/tcp/9/p2p/{RELAY_ID}", f"/ip4/1.2.3/tcp/1/p2p/{RELAY_ID}/p2p-circuit/p2p/x",
                     "", "-", "--", f"/p2p-circuit/p2p/{PEER_ID}", "z" * 5000, f"/ip4/127.0.0.1/tcp/9/p2p/{'z' * 3000}",
                     f"{PEER_ID}0"]),
    st.text(max_size=80).map(lambda t: "!" + t),  # "!" is in no peer id and no multiaddr
)
bad_relays = st.one_of(st.sampled_from([f"/ip4/127.0.0.1/udp/9/p2p/{RELAY_ID}", "/ip4/127.0.0.1/tcp/9",
                                        f"/ip4/127.0.0.1/tcp/9/p2p/{RELAY_ID}/p2p-circuit", "relay", ""]),
                       st.text(max_size=60).map(lambda t: "!" + t))
options = st.one_of(
    st.tuples(st.sampled_from(["--timeout", "--hold", "--ping-interval", "--ice-timeout", "--stun-timeout"]), numbers),
    st.tuples(st.just("--step-timeout"), st.one_of(st.text(max_size=20), numbers.map(lambda n: f"hop={n}"))),
    st.tuples(st.sampled_from(["--stun", "--turn", "--ice-address", "--ice-policy", "--turn-user"]),
              st.text(max_size=30)),
    st.tuples(st.sampled_from(["--json", "--no-upgrade", "--bogus", "-x", "--timeout"])),
)


@st.composite
def argv(draw) -> list[str]:
    command = draw(st.sampled_from(["dial", "dial", "listen", "relay-check", "analyze", "nosuch", ""]))
    opts = [part for opt in draw(st.lists(options, max_size=5)) for part in opt]
    if command == "dial":
        rest = [draw(bad_targets)] + [part for r in draw(st.lists(bad_relays, max_size=2)) for part in ("--relay", r)]
    elif command == "listen":
        rest = [part for r in draw(st.lists(bad_relays, min_size=1, max_size=2)) for part in ("--relay", r)]
    elif command == "relay-check":
        rest = draw(st.lists(bad_relays, min_size=1, max_size=3))
    elif command == "analyze":
        rest = [draw(st.sampled_from(["/nonexistent/trace.jsonl", "/", "!"]))]
        opts = [o for o in opts if o == "--json"]  # analyze reads a file: only the path is fuzzed
    else:
        rest = draw(st.lists(st.text(max_size=10), max_size=2))
    order = draw(st.permutations(opts + rest)) if draw(st.booleans()) else opts + rest
    return [command, *order] if command else list(order)


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@given(argv())
def test_options_and_arguments_fail_at_the_door(capsys, monkeypatch, args):
    monkeypatch.delenv("P2PDIAG_DEBUG", raising=False)
    code, out, err = run(args, capsys)
    assert code in ALLOWED_EXITS, f"exit {code} for {args!r}: {err[-800:]}"
    assert "Traceback" not in err and "Traceback" not in out, err[-2000:]
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith("p2pdiag: error:")]
        assert lines, f"{args!r}: {err[-800:]}"
