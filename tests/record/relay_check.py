"""Re-record relay-check's traces and vouchers from real runs (py-libp2p and js-libp2p relays, the
misbehaving test relay, a node that is not a relay, a port nothing listens on).

    python tests/record/relay_check.py     # rewrites tests/traces/relay-check/*.jsonl and vouchers.json

Each trace is a real run; tests/unit/test_relaycheck_table.py checks the verdict each one gives, and
tests/unit/test_envelope.py checks the vouchers the real relays signed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json

TRACES = ROOT / "tests" / "traces" / "relay-check"
CLI = [sys.executable, "-m", "p2pdiag", "relay-check"]
OTHER = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
BAD_MODES = ("bad-signature", "wrong-peer", "wrong-domain", "expired", "unknown-status", "silent", "no-relay")


def relay_check(name: str, *args: str) -> None:
    subprocess.run([*CLI, *args, "--json", "--trace", str(TRACES / f"{name}.jsonl")], capture_output=True,
                   text=True, timeout=180, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    print(name, json.loads((TRACES / f"{name}.jsonl").read_text().splitlines()[-1])["type"])


def start(procs: list[Proc], args: list[str], name: str) -> list[str]:
    proc = Proc(args, name)
    procs.append(proc)
    return _ready_json(proc)["addrs"]


def dead_addr() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"/ip4/127.0.0.1/tcp/{s.getsockname()[1]}/p2p/{OTHER}"


def vouchers(*names: str) -> list[dict]:
    """The first reservation of each trace, with what its checks need."""
    out = []
    for name in names:
        events = [json.loads(line) for line in (TRACES / f"{name}.jsonl").read_text().splitlines()[1:]]
        listed = next(e for e in events if e["type"] == "relaycheck.relay_listed")
        phase = next(e for e in events if e["type"] == "relaycheck.phase_started" and e["phase"] == "reserve")
        rsvp = next(e for e in events if e["type"] == "reservation.accepted" and e["t_s"] >= phase["t_s"])
        agent = next(e["agent_version"] for e in events if e["type"] == "identify.completed")
        out.append({"trace": name, "agent": agent, "relay_peer_id": listed["relay_peer_id"],
                    "peer_id": phase["peer_id"], "expire": rsvp["expire_unix_s"],
                    "received_unix_s": phase["wall_unix_s"] + rsvp["t_s"] - phase["t_s"],
                    "voucher_hex": rsvp["voucher_hex"]})
    return out


def main() -> None:
    TRACES.mkdir(exist_ok=True)
    node = subprocess.run(["bash", str(ROOT / "scripts" / "setup-js.sh")], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]
    js = [node, str(JS_DIR / "relay.mjs")]
    py = [sys.executable, "-m", "p2pdiag.peers.pyrelay"]
    procs: list[Proc] = []
    try:
        relay_check("py-default", *start(procs, [*py, "--ws-port", "0"], "py relay"))
        relay_check("py-short-measured", start(procs, [*py, "--duration-s", "4", "--data-bytes", "65536"],
                                               "py relay short")[0], "--measure-limits")
        relay_check("js-default", start(procs, js, "js relay")[0])
        relay_check("js-short-measured", start(procs, [*js, "--duration-ms", "4000", "--data-bytes", "65536"],
                                               "js relay short")[0], "--measure-limits")
        relay_check("js-slots-full", start(procs, [*js, "--max-reservations", "2"], "js relay 2 slots")[0],
                    "--reservations", "3")
        relay_check("not-a-relay", start(procs, [*py, "--no-hop"], "not a relay")[0])
        relay_check("nothing-listens", dead_addr())
        bad = [start(procs, [sys.executable, "-m", "p2pdiag.peers.badrelay", "--mode", m], m)[0] for m in BAD_MODES]
        relay_check("bad-relays", *bad, "--step-timeout", "reserve=2", "--step-timeout", "ping=2")
        relay_check("corrupting-relays", *[start(procs, [sys.executable, "-m", "p2pdiag.peers.badrelay", "--mode", m],
                                                 m)[0] for m in ("corrupt", "corrupt-payload")])
        relay_check("out-of-time", bad[BAD_MODES.index("silent")], "--timeout", "3")
        good = start(procs, py, "py relay for the list")[0]
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "relays.txt"
            listing.write_text(f"# relays\n{good}\n/ip4/127.0.0.1/tcp/4001\nnot-a-multiaddr\n\n{good}  # again\n")
            relay_check("from-file", "--from-file", str(listing))
    finally:
        for p in reversed(procs):
            p.stop()
    (TRACES / "vouchers.json").write_text(json.dumps(vouchers("py-default", "js-default"), indent=2) + "\n")
    print("vouchers.json")


if __name__ == "__main__":
    main()
