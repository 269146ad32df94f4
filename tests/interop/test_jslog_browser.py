"""The browser console pipeline of tests/record/jslog_browser.py on real Chromium: js-libp2p in the page
logs through `console.debug` with `localStorage.debug` set, the capture is rendered as DevTools copies
it, and `p2pdiag analyze` reads the result (a dial through the relay to a peer with no reservation)."""

from __future__ import annotations

import importlib.util
import json
import signal
import time

import pytest
from support import ROOT

from p2pdiag.diagnosis.jslog import diagnose_jslog
from p2pdiag.diagnosis.model import Outcome
from p2pdiag.evidence import jslog
from p2pdiag.evidence.detect import Format, detect

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]


def _recorder():
    spec = importlib.util.spec_from_file_location("jslog_browser", ROOT / "tests" / "record" / "jslog_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_browser_console_is_captured_rendered_and_read(js_relay, browser_peer, tmp_path):
    rec = _recorder()
    relay_ws = js_relay().addr("ws")
    capture = tmp_path / "console.jsonl"
    peer = browser_peer(relay_ws, "--libp2p-debug", rec.DEBUG, "--dial", f"{relay_ws}/p2p-circuit/p2p/{rec.NOBODY}",
                        "--dial-timeout-ms", "10000", "--console-capture", str(capture))
    deadline = time.monotonic() + 20
    result = None
    while result is None and time.monotonic() < deadline:
        result = next((json.loads(s) for s in list(peer.proc.stderr) if '"event":"dial_result"' in s), None)
        time.sleep(0.1)
    assert result is not None and result["ok"] is False and result["stage"] == "dial", result
    peer.proc.signal(signal.SIGTERM)
    assert peer.proc.wait(15) == 0
    events = [json.loads(s) for s in capture.read_text().splitlines()]
    assert any(e["type"] == "debug" and e["args"][0]["value"].startswith("%clibp2p:") for e in events)

    for timestamps, layout in ((True, "browser-time"), (False, "browser")):
        path = tmp_path / f"{layout}.log"
        path.write_text("".join(rec.render(e, timestamps) + "\n" for e in events))
        assert detect(path) is Format.JS_LOG
        verdict = diagnose_jslog(jslog.load(path))
        assert verdict.outcome is Outcome.UNREACHABLE
        assert "hop-no-reservation" in {f.code for f in verdict.findings}
        assert verdict.facts["log"]["layout"] == layout and verdict.facts["log"]["trace_level"]
        assert verdict.facts["peer_id"] == rec.NOBODY
