"""`p2pdiag lab run`'s exit codes, with a real lab: a scenario whose verdict differs from its
expectation exits SCENARIO_FAILED (6), which is not a tool error (1); a scenario file that cannot
be used exits USAGE (2) with one line and no traceback, before any lab is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from p2pdiag.exitcodes import ExitCode
from p2pdiag.lab import Lab
from p2pdiag.lab.scenario import SCENARIO_DIR

ROOT = Path(__file__).resolve().parents[2]


def lab_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", "lab", "run", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)


def new_leftovers(before: set[str]) -> list[str]:
    """Labs that appeared since `before` and whose owner is gone: what a lab run failed to remove."""
    return [i.lab_id for i in Lab.list_labs() if i.lab_id not in before and i.leftover]


def test_a_verdict_other_than_expected_is_scenario_failed(lab_machine, tmp_path):
    # cone/cone with STUN upgrades (tests/lab/test_scenarios.py); this copy expects otherwise
    text = (SCENARIO_DIR / "cone-cone-stun.toml").read_text()
    assert 'outcome = "upgraded"' in text
    wrong = tmp_path / "wrong-expectation.toml"
    wrong.write_text(text.replace('outcome = "upgraded"', 'outcome = "unreachable"'))
    keep = tmp_path / "kept"
    before = {info.lab_id for info in Lab.list_labs()}
    done = lab_run(str(wrong), "--keep", str(keep))
    assert done.returncode == ExitCode.SCENARIO_FAILED == 6, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "✗ outcome upgraded (expected unreachable)" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("FAIL")
    assert (keep / "dial.jsonl").exists()  # what a failed scenario leaves to look at
    assert not new_leftovers(before)  # the lab it built is gone (other labs may be a parallel run's)


def test_a_broken_scenario_file_is_bad_input(lab_machine, tmp_path):
    before = {info.lab_id for info in Lab.list_labs()}
    cases = {
        "not-toml.toml": "[lab.a\nnat = 'cone'\n",
        "unknown-field.toml": '[expect]\noutcome = "upgraded"\n[relay]\ndata_limit = 4096\n',
        "no-expectation.toml": '[lab.a]\nnat = "cone"\n',
        "bad-nat.toml": '[lab.a]\nnat = "conical"\n[expect]\noutcome = "upgraded"\n',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        done = lab_run(str(path), timeout=30)
        assert done.returncode == ExitCode.USAGE, (name, done.returncode, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], (name, done.stderr)  # one line naming the file
        assert done.stdout == ""
    missing = lab_run(str(tmp_path / "absent.toml"), timeout=30)
    assert missing.returncode == ExitCode.USAGE and len(missing.stderr.strip().splitlines()) == 1
    assert not new_leftovers(before)
