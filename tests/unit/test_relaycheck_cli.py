"""relay-check's command line: the relay list, bad input as one line and exit 2, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.relaycheck import RELAY_CHECK, ROOT, SOME_PEER

from p2pdiag.cli.relaycheck import read_relays
from p2pdiag.errors import UsageError

GOOD = f"/ip4/127.0.0.1/tcp/4001/p2p/{SOME_PEER}"
OTHER = "/ip4/127.0.0.1/tcp/4002/ws/p2p/12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"


def test_arguments_then_file_lines_are_labelled_in_order_and_bad_lines_kept_with_their_number(tmp_path):
    listing = tmp_path / "relays.txt"
    listing.write_text(f"# my relays\n\n{OTHER}   # ws one\n/ip4/1.2.3.4/tcp/4001\nnonsense\n{GOOD}\n")
    targets, rejected = read_relays([GOOD], listing)
    assert [(t.label, t.relay.addr, t.source, t.line) for t in targets] == [
        ("r1", GOOD, "argument", 1), ("r2", OTHER, str(listing), 3)]
    assert targets[1].relay.transport == "ws"
    assert [(r.line, r.duplicate_of) for r in rejected] == [(4, None), (5, None), (6, "r1")]
    assert "must end with /p2p/" in rejected[0].error and "not a multiaddr" in rejected[1].error


def test_a_file_of_nothing_but_bad_lines_is_still_checked_and_reported(tmp_path):
    listing = tmp_path / "relays.txt"
    listing.write_text("nonsense\n")
    targets, rejected = read_relays([], listing)
    assert not targets and rejected[0].line == 1


@pytest.mark.parametrize("args", [[], ["/ip4/127.0.0.1/tcp/4001"], [GOOD + "/p2p-circuit"]])
def test_bad_relay_arguments_are_usage_errors(args):
    with pytest.raises(UsageError):
        read_relays(args, None)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RELAY_CHECK, *args], capture_output=True, text=True, timeout=30, cwd=ROOT,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize("args", [
    ["not-an-address"],
    [],
    [GOOD, "--reservations", "-1"],
    [GOOD, "--timeout", "0"],
    [GOOD, "--measure-max", "0"],
    [GOOD, "--step-timeout", "nosuchstep=3"],
    ["--from-file", "/nonexistent/relays.txt"],
])
def test_bad_input_is_one_line_and_exit_2(args):
    result = _run(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pdiag: error: "), result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(_run(*args, "--json").stdout)
    assert doc["schema_version"] == 1 and doc["outcome"] == "error" and doc["exit_code"] == 2


def test_transfer_is_a_step_timeout_name():
    assert _run(GOOD, "--step-timeout", "transfer=0").returncode == 2  # out of range, but a known name
    assert "transfer" in _run("--help").stdout


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)), "
                          "file=sys.stderr)"], capture_output=True, text=True, cwd=ROOT, check=True).stderr.split()
    return {m.split(".")[0] for m in out}


def test_help_and_registering_the_command_import_nothing_heavy():
    loaded = _loaded_after(
        "from p2pdiag.cli import main\ntry:\n    main(['relay-check', '--help'])\nexcept SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code")
    assert not loaded & {"libp2p", "trio", "aiortc"}, loaded & {"libp2p", "trio", "aiortc"}


def test_diagnosis_of_a_relay_check_imports_no_network_or_ui_library():
    loaded = _loaded_after("import p2pdiag.diagnosis.relaycheck, p2pdiag.wire.envelope, "
                           "p2pdiag.trace.events.relaycheck, p2pdiag.render.json")
    assert not loaded & {"trio", "libp2p", "aiortc", "aioice", "rich"}
