"""`p2pdiag report` opened in real headless Chromium from a file:// URL, as from an email attachment.

scripts/report-screenshot.mjs loads the page offline with every other request refused and recorded,
and says what the page showed. A test fails on any console error or warning, any script error, any
request beyond the file itself, and checks the verdict headline and the timeline's bars, lanes and
marks are on the page as Chromium laid it out. The unit tests read the same page with html.parser
(tests/unit/test_report_html.py); this is the browser's word on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT
from support.report import recorded_with

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(120)]

TRACES = ROOT / "tests" / "traces"
SCRIPT = ROOT / "scripts" / "report-screenshot.mjs"


def _report(tmp_path: Path, *inputs: Path) -> tuple[Path, int, str]:
    out = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "p2pdiag", "report", *map(str, inputs), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.exists(), done.stderr
    return out, done.returncode, done.stdout


def _open(node22: str, chromium: str, page: Path) -> dict:
    png = page.with_suffix(".png")
    done = subprocess.run([node22, str(SCRIPT), str(page), str(png), "--chromium", chromium],
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["console_errors"] == [] and shown["page_errors"] == []
    assert shown["requests"] == []  # nothing but the file itself
    assert shown["scripts"] == 0 and shown["injected"] == 0
    assert png.stat().st_size > 10_000  # a real picture of a page, not a blank one
    for svg in shown["svgs"]:
        assert svg["width"] > 600 and svg["height"] > 60  # laid out at a readable size
    return shown


def test_a_relay_cut_report_shows_its_verdict_and_its_timeline_in_chromium(tmp_path, node22, chromium):
    page, code, out = _report(tmp_path, TRACES / "relay" / "dial-py-data-cut.jsonl")
    shown = _open(node22, chromium, page)
    assert code == 3
    headline = out.splitlines()[0].split(": ", 2)[2]
    assert shown["headlines"] == [headline]
    (svg,) = shown["svgs"]
    assert "span span-relayed" in svg["spans"] and "span span-limit" in svg["spans"]
    assert svg["marks"] == ["mark mark-cut"] and svg["bytes"] == 1
    assert svg["lanes"] == 3 and svg["lane_labels"][0].startswith("relayed-1 to ")
    assert shown["findings"] == 4


def test_a_reconnect_loop_and_a_failed_upgrade_draw_their_lanes_in_chromium(tmp_path, node22, chromium):
    page, code, _ = _report(tmp_path, TRACES / "reconnect" / "listen-js-loop-relay-cut.jsonl")
    (svg,) = _open(node22, chromium, page)["svgs"]
    assert code == 0
    assert sum(s.startswith("span span-round") for s in svg["spans"]) == 3
    assert sum(s == "span span-upgrade-failed" for s in svg["spans"]) == 3
    assert any(s.startswith("span span-pair-") for s in svg["spans"])
    assert svg["marks"].count("mark mark-cut") == 3


def test_a_hostile_trace_runs_nothing_in_chromium(tmp_path, node22, chromium):
    hostile = '<script>console.error("injected")</script><img src=http://192.0.2.1/x onerror=alert(1)>'
    lines = []
    for line in (TRACES / "relay" / "dial-py-data-cut.jsonl").read_text().splitlines():
        obj = json.loads(line)
        for key in ("reason", "agent_version", "error"):
            if isinstance(obj.get(key), str):
                obj[key] = hostile
        lines.append(json.dumps(obj))
    trace = tmp_path / "hostile.jsonl"
    trace.write_text("\n".join(lines) + "\n")
    page, _, _ = _report(tmp_path, trace)
    shown = _open(node22, chromium, page)  # no console error, no request, no script, no img
    assert shown["svgs"] and shown["headlines"]


def test_a_trace_and_a_log_share_one_timeline_in_chromium(tmp_path, node22, chromium):
    log = TRACES / "jslog" / "dial-webrtc-upgraded.log"
    trace = recorded_with(TRACES / "relay" / "dial-py-data-cut.jsonl", log, tmp_path, -0.5)
    far = TRACES / "network" / "symmetric-symmetric-listen.jsonl"  # recorded weeks before: an axis of its own
    page, code, _ = _report(tmp_path, trace, log, far, TRACES / "jslog" / "dial-no-reservation-colour-no-trace.log")
    shown = _open(node22, chromium, page)
    assert code == 3  # as analyze of them gives it: the first dialing side's, the trace that stayed relayed
    assert len(shown["headlines"]) == 5  # the four inputs' and the one of them all
    shared, alone = shown["svgs"]  # the trace and the log together; the far trace alone; the coloured log undrawn
    assert "span span-webrtc open" in shared["spans"] and shared["spans"].count("span span-relayed") == 2
    assert shared["lane_labels"][0].startswith("relayed-1 to ") and "span span-relayed" in alone["spans"]
