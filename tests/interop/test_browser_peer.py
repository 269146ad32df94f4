"""A js-libp2p peer in headless Chromium (interop/js/browser-peer.mjs) behind the js relay, dialled by dialer.mjs.

The browser reaches the relay over WebSocket only; the Node dialer reaches the browser through the
relay (asserted) and over WebRTC set up across that relayed connection (tried and reported, not
asserted: on loopback it works most of the time, but not always).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support import JS_DIR, ROOT, _ready_json

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed by scripts/setup-chromium.sh if missing; skip only if that is impossible."""
    try:
        result = subprocess.run(["bash", str(ROOT / "scripts" / "setup-chromium.sh")], check=False, capture_output=True,
                                text=True, timeout=600, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.skip("chromium cannot be installed: scripts/setup-chromium.sh took more than 600 s")
    if result.returncode != 0:
        pytest.skip(f"chromium cannot be installed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def _descendants(pid: int) -> set[int]:
    """Every live process below pid (Chromium's browser, zygote, renderer, ... processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _dial(node22: str, target: str, **flags) -> list[dict]:
    args = [node22, str(JS_DIR / "dialer.mjs"), "--target", target, "--quiet"]
    for k, v in flags.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    result = subprocess.run(args, check=False, capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
    lines = [json.loads(s) for s in result.stdout.splitlines() if s.startswith("{")]
    assert lines, f"dialer.mjs printed no result (exit {result.returncode}): {result.stderr[-2000:]}"
    return lines


def _page_events(proc, name: str) -> list[dict]:
    out = []
    for line in list(proc.stderr):
        if f'"event":"{name}"' in line:
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def test_browser_peer_reachable_through_js_relay(js_relay, spawn, node22, chromium, record_property):
    relay = js_relay()
    relay_ws = relay.addr("ws")

    t0 = time.monotonic()
    browser = spawn([node22, str(JS_DIR / "browser-peer.mjs"), "--relay", relay_ws, "--chromium", chromium],
                    "browser peer")
    ready = _ready_json(browser)
    time_to_ready = time.monotonic() - t0

    peer_id = ready["peer_id"]
    assert ready["browser"].startswith("Chromium ")
    assert ready["webrtc"] is True
    circuit = f"{relay_ws}/p2p-circuit/p2p/{peer_id}"
    webrtc = f"{relay_ws}/p2p-circuit/webrtc/p2p/{peer_id}"
    assert circuit in ready["addrs"] and webrtc in ready["addrs"], ready["addrs"]
    chromium_pids = _descendants(browser.popen.pid)
    assert chromium_pids, "no Chromium processes below browser-peer.mjs"

    # relayed: Node dialer -> relay (ws) -> browser, ping over that limited connection
    [relayed] = _dial(node22, circuit, pings=2, timeout_ms=15000)
    assert relayed["ok"], relayed
    assert relayed["remote_peer"] == peer_id
    assert relayed["relayed"] is True and relayed["limited"] is True and relayed["webrtc"] is False
    assert len(relayed["rtts_ms"]) == 2
    # ... and the page saw it as an inbound relayed connection (its console log, relayed to stderr)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        inbound = [e for e in _page_events(browser, "connection_open") if e["direction"] == "inbound"]
        if inbound:
            break
        time.sleep(0.1)
    assert inbound and inbound[0]["relayed"] and inbound[0]["limited"], "".join(browser.stderr)[-2000:]

    # WebRTC private-to-private, signalled over the relay: tried up to 3 times, reported, not asserted
    attempts = _dial(node22, webrtc, pings=2, repeat=3, timeout_ms=8000)
    first_ok = next((a for a in attempts if a["ok"]), None)
    pairs = _page_events(browser, "ice_selected_pair")
    report = {
        "browser": ready["browser"],
        "timings": ready.get("timings"),
        "time_to_ready_s": round(time_to_ready, 2),
        "relayed_rtts_ms": relayed["rtts_ms"],
        "webrtc_attempts": [{k: a.get(k) for k in ("attempt", "ok", "webrtc", "limited", "time_to_connection_ms",
                                                    "rtts_ms", "stage", "error")} for a in attempts],
        "webrtc_candidate_pairs": [{"local": p.get("local"), "remote": p.get("remote"), "dtls": p.get("dtls_state")}
                                   for p in pairs],
    }
    record_property("browser_peer_report", json.dumps(report))
    print("\nbrowser peer report:", json.dumps(report))
    if first_ok is not None:
        # whatever came back ok must really be a direct (not limited) WebRTC connection to the browser
        assert first_ok["webrtc"] is True and first_ok["limited"] is False, first_ok
        assert first_ok["remote_peer"] == peer_id

    # clean shutdown on SIGTERM, taking every Chromium process with it
    browser.signal(signal.SIGTERM)
    assert browser.wait(10) == 0, "".join(browser.stderr)[-2000:]
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in chromium_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in chromium_pids if _alive(p)]
    for p in left:  # do not leak them into other tests even when failing
        os.kill(p, signal.SIGKILL)
    assert not left, f"Chromium processes left after SIGTERM: {left}"

