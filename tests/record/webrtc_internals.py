"""Re-record the chrome://webrtc-internals dumps `p2pdiag analyze` reads, from real Chromium.

    python tests/record/webrtc_internals.py     # rewrites tests/traces/webrtc-internals/*.json.gz

Needs Node 22 (scripts/setup-js.sh) and Debian's /usr/bin/chromium (scripts/setup-chromium.sh);
everything runs on this machine. Each dump is taken as a user takes one: interop/js/browser-peer.mjs
`--webrtc-internals FILE` opens chrome://webrtc-internals in a second page of the same headless
Chromium before the js-libp2p node starts, and when the peer is stopped clicks the page's own
"Create a WebRTC-Internals dump" → 'Download the "webrtc-internals dump"' and keeps the download
(gzipped, the page's default). Nothing is edited or trimmed after Chromium writes it; the
connections are kept short (a few seconds of stats, sampled once a second) so the files stay small.

The browser peer listens through a js relay; interop/js/dialer.mjs (Node) dials its
`/p2p-circuit/webrtc` address, so each dump holds the browser's side (the answerer) of the upgrade:

- upgraded.json.gz: the WebRTC upgrade succeeded (retried until one does: js Node -> Chromium
  fails now and then, interop/js/browser/README.md); the js dialer's own attempts that failed
  before it are further peer connections in the same dump;
- two-upgrades.json.gz: two dials one after the other (each a dialer process that pings and
  leaves), dumped at once: two peer connections, the first closed, the verdict about the last;
- upgraded-stun.json.gz: the browser's ICE server is Debian's coturn on 127.0.0.1 as TURN with a
  wrong credential; it answers STUN (a srflx candidate with its URL), and ICE connects before
  Chromium's relay phase asks it for an allocation: an upgrade with a STUN server;
- turn-refused-relay-only.json.gz: the same server and credential with `--ice-transport-policy
  relay`: coturn refuses the allocation with 401 (icecandidateerror), Chromium has no candidate to
  offer and ICE fails (one attempt);
- no-local-candidates.json.gz: relay, browser peer and dialer in a network namespace of their own
  with only loopback up (`unshare -n`, so root): Chromium gathers no loopback candidate, has none
  to offer, and ICE fails (one attempt);
- udp-blocked.json.gz: a namespace of its own with one address (on a veth pair) and an nftables
  rule dropping every UDP packet it sends: Chromium has candidates, its STUN server (at that address)
  never answers, no check is answered; the js dialer gives up at its 6 s while Chromium's ICE is
  still checking, and the dump is taken at once;
- dropped-peer-connection.json.gz: the same, dumped 30 s later: Chromium has dropped the closed
  peer connection from the page, and the dump holds none (analyze refuses it, saying why).

tests/unit/test_webrtc_internals_table.py checks the verdict each one gives.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

DUMPS = ROOT / "tests" / "traces" / "webrtc-internals"
STATS_S = 2.5  # webrtc-internals samples getStats once a second: a few samples after the dial

UDP_BLOCKED_ADDR = "10.99.0.1"  # on one end of a veth pair, inside a namespace of its own
UDP_BLOCKED_WAIT_S = 0.5  # at once: Chromium drops a closed peer connection from the page within seconds
DROPPED_WAIT_S = 30.0
DROP_UDP = "add table inet p2pdiag; add chain inet p2pdiag out { type filter hook output priority 0; }; " \
           "add rule inet p2pdiag out meta l4proto udp drop"
TURN_USER, TURN_RIGHT, TURN_WRONG = "p2pdiag", "right-credential", "wrong-credential"


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def coturn(host: str, state: Path):
    """Debian's coturn on HOST (UDP only, long-term credentials, user TURN_USER:TURN_RIGHT): a real
    TURN server that answers a wrong credential with 401, as a misconfigured one in the field does."""
    port = free_udp_port(host)
    conf = state / "turnserver.conf"
    conf.write_text("\n".join([
        f"listening-ip={host}", f"listening-port={port}", "no-tls", "no-dtls", "no-cli", "lt-cred-mech",
        f"user={TURN_USER}:{TURN_RIGHT}", "realm=p2pdiag.test", "fingerprint", f"userdb={state / 'turndb'}",
        f"pidfile={state / 'turnserver.pid'}", "log-file=stdout", "simple-log"]) + "\n")
    proc = subprocess.Popen(["turnserver", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)  # coturn listens within ~0.1 s (p2pdiag/lab/coturn.py)
        if proc.poll() is not None:
            raise RuntimeError(f"turnserver exited: {proc.stdout.read() if proc.stdout else ''}")
        yield port
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
        print("coturn:", " | ".join(line for line in out.splitlines() if "incorrect" in line or "401" in line)[:300])


def record(node: str, relay_ws: str, name: str, ice_servers: list[dict], attempts: int = 5, *policy: str,
           after_s: float = STATS_S, upgrades: int = 1) -> bool:
    """Start the browser peer with ICE_SERVERS and its webrtc-internals page, dial its WebRTC address
    from the Node dialer (again, up to ATTEMPTS, until UPGRADES dials have upgraded), and keep the dump
    as NAME."""
    out = DUMPS / name
    out.unlink(missing_ok=True)
    browser = Proc([node, str(JS_DIR / "browser-peer.mjs"), "--relay", relay_ws, "--ice-servers",
                    json.dumps(ice_servers), *policy, "--webrtc-internals", str(out)], "browser peer")
    ok = 0
    try:
        ready = _ready_json(browser)
        target = next(a for a in ready["addrs"] if "/webrtc/" in a and "/ws/" not in a)
        for n in range(attempts):
            result = subprocess.run([node, str(JS_DIR / "dialer.mjs"), "--target", target, "--pings", "2",
                                     "--timeout-ms", "15000"], capture_output=True, text=True, timeout=60,
                                    cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
            print(name, "dial", n + 1, "exit", result.returncode, result.stdout.strip()[-300:])
            ok += result.returncode == 0
            if ok >= upgrades:
                break
        time.sleep(after_s)
    finally:
        browser.stop()
    saved = [line for line in browser.stderr if "webrtc_internals" in line]
    print(name, out.stat().st_size if out.exists() else "NOT SAVED", "bytes;", "".join(saved).strip()[-300:])
    return ok >= upgrades and out.exists()


def main() -> None:
    DUMPS.mkdir(parents=True, exist_ok=True)
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()
    if sys.argv[1:] == ["--no-network"]:  # in a network namespace of its own, with only loopback up
        with started_relay(node) as relay_ws:
            record(node, relay_ws, "no-local-candidates.json.gz", [], attempts=1)
        return
    if sys.argv[1:] == ["--udp-blocked"]:  # a namespace of its own, one address, every UDP packet dropped
        with started_relay(node) as relay_ws:
            # a STUN server nobody can reach (its UDP is dropped like the rest); ICE gets the time to fail
            record(node, relay_ws, "udp-blocked.json.gz", [{"urls": f"stun:{UDP_BLOCKED_ADDR}:3478"}], 1,
                   after_s=UDP_BLOCKED_WAIT_S)
            # the same, dumped 30 s later: Chromium has dropped the closed peer connection from the page
            record(node, relay_ws, "dropped-peer-connection.json.gz", [{"urls": f"stun:{UDP_BLOCKED_ADDR}:3478"}],
                   1, after_s=DROPPED_WAIT_S)
        return
    with started_relay(node) as relay_ws:
        record(node, relay_ws, "upgraded.json.gz", [])
        # two dialer processes one after the other: two peer connections in one dump, the first closed
        # when its dialer left; the dump is taken at once, before Chromium drops the closed one
        record(node, relay_ws, "two-upgrades.json.gz", [], 4, after_s=0.5, upgrades=2)
        with tempfile.TemporaryDirectory() as state, coturn("127.0.0.1", Path(state)) as port:
            turn = {"urls": f"turn:127.0.0.1:{port}?transport=udp", "username": TURN_USER, "credential": TURN_WRONG}
            # policy all: coturn answers STUN (a srflx candidate) and ICE connects before Chromium's relay
            # gathering phase starts, so the TURN server is never asked
            record(node, relay_ws, "upgraded-stun.json.gz", [turn])
            # policy relay: only TURN counts; coturn refuses the wrong credential (401), no candidate, ICE fails
            record(node, relay_ws, "turn-refused-relay-only.json.gz", [turn], 1, "--ice-transport-policy", "relay")
    # Chromium gathers no loopback candidate: with loopback the only network, it has none to offer and
    # ICE fails, as on a machine whose only interface WebRTC may not use
    subprocess.run(["unshare", "-n", "sh", "-c", f'ip link set lo up && exec "{sys.executable}" "{__file__}" '
                    "--no-network"], check=True, cwd=ROOT)
    # a firewall that drops UDP: Chromium has an address (a dummy interface) and candidates, every check
    # and the STUN request go unanswered, ICE fails; TCP (the relay, the page) still works
    subprocess.run(["unshare", "-n", "sh", "-c",
                    "set -e; ip link set lo up; ip link add v0 type veth peer name v1; ip link set v0 up; "
                    f"ip link set v1 up; ip addr add {UDP_BLOCKED_ADDR}/24 dev v0; ip route add default dev v0; "
                    f"nft '{DROP_UDP}'; "
                    f'exec "{sys.executable}" "{__file__}" --udp-blocked'], check=True, cwd=ROOT)


@contextlib.contextmanager
def started_relay(node: str):
    relay = Proc([node, str(JS_DIR / "relay.mjs")], "js relay")
    try:
        yield next(a for a in _ready_json(relay)["addrs"] if "/ws/" in a)
    finally:
        relay.stop()


if __name__ == "__main__":
    main()
