"""`p2pdiag explain CODE`: the pages ship with the package, every finding's `more:` line names the command."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from p2pdiag.cli import explain
from p2pdiag.diagnosis.codes import Code

ROOT = Path(__file__).resolve().parents[2]


def p2pdiag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


def test_the_package_has_a_page_for_every_code_and_a_code_for_every_page():
    assert set(explain.codes()) == {c.value for c in Code}


def test_the_pages_have_one_home():
    """p2pdiag/verdicts points at docs/verdicts (the pages people browse), and the build ships what it points at."""
    link = ROOT / "p2pdiag" / "verdicts"
    assert link.is_symlink() and link.resolve() == (ROOT / "docs" / "verdicts").resolve()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["p2pdiag"]
    assert "verdicts/*.md" in data


def test_explain_prints_the_page():
    result = p2pdiag("explain", "relay-limited")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "docs" / "verdicts" / "relay-limited.md").read_text(encoding="utf-8")
    assert not result.stderr


def test_explain_list_names_every_code_once():
    result = p2pdiag("explain", "--list")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == sorted(c.value for c in Code)
    assert "relay-limited  " in result.stdout and "the relay will cut this relayed connection" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "relay-limit"], "no finding code 'relay-limit'; close: relay-limited, relay-limit-unit"),
        (["explain", "voucher"], "close: voucher-"),
        (["explain", "zzzz"], "no finding code 'zzzz' (`p2pdiag explain --list` lists all"),
        (["explain"], "give a finding code"),
        (["explain", "relay-limited", "--list"], "give a CODE or --list, not both"),
        (["explain", "--bogus"], "No such option: --bogus"),
        (["explain", "../README"], "no finding code '../README'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = p2pdiag(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("p2pdiag: error: ") and message in line, line


def test_a_code_is_forgiven_its_case_and_md_suffix():
    assert explain.page("Relay-Limited.md") == explain.page("relay-limited")


def test_every_more_line_is_a_command_that_works():
    """The terminal view's `more:` line for each finding of a recorded trace is a command that prints its page."""
    from rich.console import Console

    from p2pdiag.diagnosis import diagnose
    from p2pdiag.render.terminal import render
    from p2pdiag.trace.file import load

    console = Console(record=True, width=200)
    render(diagnose(load(ROOT / "tests" / "traces" / "relay" / "dial-py-duration-cut.jsonl")), console)
    mores = [line.split("more: ", 1)[1] for line in console.export_text().splitlines() if "more: " in line]
    assert mores and all(m.startswith("p2pdiag explain ") for m in mores)
    for m in set(mores):
        assert explain.page(m.split()[-1]).startswith(f"# `{m.split()[-1]}`")


def test_explain_loads_no_diagnosis_trace_or_network_module():
    code = ("import sys\nfrom p2pdiag.cli import main\ntry:\n    main(['explain', 'relay-limited'])\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("MODULES ")]
    modules = line.split()[1:]
    assert "p2pdiag.cli.explain" in modules
    heavy = [m for m in modules if m.split(".")[0] in ("trio", "libp2p", "aiortc")
             or m.startswith(("p2pdiag.trace", "p2pdiag.diagnosis", "p2pdiag.probes"))]
    assert not heavy, heavy
