"""`p2pdiag report` of a real watch trace: a short `p2pdiag watch` of a real py-libp2p relay and a
peer whose address refuses (nothing listens there). The page exits as `analyze` does and shows the
verdict, every finding and every step; a watch history has no relayed connection to draw, and the
timeline says so instead of failing."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest
from support import ROOT, run_p2pdiag
from support.prometheus import free_port

pytestmark = pytest.mark.timeout(120)


def page_text(page: str) -> str:
    """The page as a person reads it: no style, no tags, entities decoded, whitespace collapsed."""
    body = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def one(text: str) -> str:
    return " ".join(text.split())


def test_report_of_a_watch_trace(py_relay, tmp_path):
    relay = py_relay(ws=False)
    gone = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{relay.peer_id}"  # a port nothing listens on
    config = tmp_path / "fleet.toml"
    config.write_text(f'interval = 2\ntimeout = 1.5\n\n[[relay]]\nname = "relay"\naddr = "{relay.addr("tcp")}"\n'
                      f'\n[[peer]]\nname = "gone"\naddrs = ["{gone}"]\n')
    trace = tmp_path / "watch.jsonl"
    watched = subprocess.run([sys.executable, "-m", "p2pdiag", "watch", str(config), "--trace", str(trace),
                              "--duration", "4"], capture_output=True, text=True, timeout=60, cwd=ROOT,
                             stdin=subprocess.DEVNULL, check=False)
    assert watched.returncode == 7, watched.stderr[-3000:]

    analyzed, doc = run_p2pdiag("analyze", "--json", str(trace))
    assert doc is not None and doc["outcome"] == "fleet_problem", analyzed.stderr
    codes = {f["code"] for f in doc["findings"]}
    assert {"peer-down", "address-down"} <= codes, codes
    assert "reservation-lost" not in codes and "probe-failed" not in codes  # the relay stayed up

    out = tmp_path / "out.html"
    reported, _ = run_p2pdiag("report", str(trace), "-o", str(out))
    assert reported.returncode == analyzed.returncode == doc["exit_code"] == 7, reported.stderr[-3000:]
    assert "Traceback" not in reported.stderr
    text = page_text(out.read_text())
    assert "Verdict fleet_problem" in text
    assert one(doc["headline"]) in text
    for f in doc["findings"]:
        assert one(f["title"]) in text, f["code"]
        assert f["evidence"] and all(one(e) in text for e in f["evidence"]), f["code"]
    for step in doc["steps"]:
        assert one(step["title"]) in text and one(step["detail"]) in text, step["key"]
    assert "exit code 7" in text
    assert "nothing to draw: no relayed connection or upgrade in this evidence" in text
    assert json.loads(trace.read_text().splitlines()[0])["command"] == "watch"
