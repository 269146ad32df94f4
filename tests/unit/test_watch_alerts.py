"""The alerting rules shipped with watch (`p2pdiag/watch/alerts/`), checked by Prometheus' own promtool.

`promtool test rules` runs the synthetic series of p2pdiag-rules.test.yml through the rules. Two
mutations show the tests hold every alert to both sides: with an alert's expression made to never
fire, promtool must fail on that alert's firing case; made to fire always, on its silent case.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import p2pdiag.watch
from p2pdiag.watch.metrics import WatchMetrics

ALERTS = Path(p2pdiag.watch.__file__).parent / "alerts"
RULES = ALERTS / "p2pdiag-rules.yml"
TESTS = ALERTS / "p2pdiag-rules.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: scripts/setup-system.sh installs Debian's prometheus, which has it")

NAMES = re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def mutated(name: str, wrap: str) -> str:
    """The rules with alert NAME's expression E replaced by WRAP.format(E)."""
    text = RULES.read_text()
    rule = re.compile(rf"(- alert: {name}\n(?:\s+#.*\n)*\s+expr: )(>-\n((?: {{10}}.*\n)+)|(.*)\n)")
    m = rule.search(text)
    assert m, name
    expr = " ".join((m.group(3) or m.group(4)).split())
    quoted = "'" + wrap.format(expr).replace("'", "''") + "'"  # a YAML single-quoted scalar
    return text[: m.start(2)] + quoted + "\n" + text[m.end():]


def run_tests_against(rules_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "p2pdiag-rules.yml").write_text(rules_text)
    shutil.copy(TESTS, tmp_path / "p2pdiag-rules.test.yml")
    return promtool("test", "rules", "p2pdiag-rules.test.yml", cwd=tmp_path)


def test_the_rules_ship_as_package_data():
    assert RULES.is_file() and TESTS.is_file()
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"watch/alerts/*.yml"' in pyproject
    assert len(NAMES) == 10, NAMES


def test_the_rules_name_only_series_watch_exports():
    m = WatchMetrics()
    exported = {fam.name for fam in m.registry.collect()}
    used = set(re.findall(r"\bp2pdiag_[a-z_]+", RULES.read_text()))
    used = {re.sub(r"_(bucket|total)$", "", n) for n in used}
    assert used and used <= exported, sorted(used - exported)


@needs_promtool
def test_promtool_checks_and_tests_the_rules():
    check = promtool("check", "rules", RULES.name, cwd=ALERTS)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(NAMES)} rules found" in check.stdout
    test = promtool("test", "rules", TESTS.name, cwd=ALERTS)
    assert test.returncode == 0, test.stdout + test.stderr


@needs_promtool
@pytest.mark.parametrize("name", NAMES)
def test_each_alert_has_a_firing_and_a_silent_case(name, tmp_path):
    never = run_tests_against(mutated(name, "({}) and on() vector(0) == 1"), tmp_path)
    assert never.returncode != 0, f"no test expects {name} to fire"
    assert f"alertname: {name}," in never.stdout + never.stderr  # promtool reports failures on stderr
    always = run_tests_against(mutated(name, "({}) or vector(1)"), tmp_path)
    assert always.returncode != 0
    out = always.stdout + always.stderr
    assert re.search(rf"alertname: {name}, time: \S+, \n\s+exp:\[\], ", out), f"no test expects {name} to stay silent"
