"""Record the network-diagnosis traces from real runs in the lab (needs root and coturn).

    python tests/record/network.py [CASE ...]   # rewrites tests/traces/network/CASE-{dial,listen}.jsonl

Each case builds a lab (p2pdiag.lab), runs the py-libp2p relay on `relay`, `p2pdiag listen` on
`b` and `p2pdiag dial` to its /webrtc address on `a`, each with the lab's STUN (and TURN) server,
and keeps both traces. tests/unit/test_network_diagnosis.py checks the verdict each one gives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from p2pdiag.lab import Lab, Router, Topology
from p2pdiag.lab.proc import LineChild

TRACES = Path(__file__).resolve().parents[1] / "traces" / "network"
PY = sys.executable

# name: (router a (dialer), router b (listener), TURN (False, True, or "bad": a wrong password), ICE policy)
CASES: dict[str, tuple[Router, Router, bool | str, str]] = {
    "cone-cone": (Router(nat="cone"), Router(nat="cone"), False, "all"),
    "dialer-udp-blocked": (Router(nat="cone", udp="blocked"), Router(nat="cone"), False, "all"),
    "listener-udp-blocked": (Router(nat="cone"), Router(nat="cone", udp="blocked"), False, "all"),
    "symmetric-symmetric": (Router(nat="symmetric"), Router(nat="symmetric"), False, "all"),
    "symmetric-fullcone": (Router(nat="symmetric"), Router(nat="full-cone"), False, "all"),
    "symmetric-symmetric-turn-all": (Router(nat="symmetric"), Router(nat="symmetric"), True, "all"),
    "symmetric-symmetric-turn-relay": (Router(nat="symmetric"), Router(nat="symmetric"), True, "relay"),
    "symmetric-symmetric-turn-bad-credential": (Router(nat="symmetric"), Router(nat="symmetric"), "bad", "all"),
    # the dialer gets a second STUN server (coturn's other IP), so `dial` probes its NAT too
    "probed-cone-cone": (Router(nat="cone"), Router(nat="cone"), False, "all"),
    "probed-symmetric-symmetric": (Router(nat="symmetric"), Router(nat="symmetric"), False, "all"),
    "probed-dialer-udp-blocked": (Router(nat="cone", udp="blocked"), Router(nat="cone"), False, "all"),
    # as above, recorded once p2pdiag bounded gathering and kept the TURN error code (the older
    # recordings stay, as traces from before: their diagnosis must not change)
    "bounded-dialer-udp-blocked": (Router(nat="cone", udp="blocked"), Router(nat="cone"), False, "all"),
    "coded-turn-bad-credential": (Router(nat="symmetric"), Router(nat="symmetric"), "bad", "all"),
    # both peers get the second STUN server: each sends a srflx per server, showing its NAT's mapping
    "two-stun-cone-cone": (Router(nat="cone"), Router(nat="cone"), False, "all"),
    "two-stun-symmetric-symmetric": (Router(nat="symmetric"), Router(nat="symmetric"), False, "all"),
}


def _ice_args(lab: Lab, turn: bool | str, policy: str) -> list[str]:
    args = ["--stun", lab.stun_url, "--ice-policy", policy]
    if turn:
        password = "wrong-password" if turn == "bad" else lab.turn_password
        args += ["--turn", lab.turn_url, "--turn-user", lab.turn_username, "--turn-credential", password]
    return args


class _Child(LineChild):
    """A lab process read in the background (p2pdiag/lab/proc.py), its stderr kept to say why a line never came."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        super().__init__(popen)
        self.stderr: list[str] = []
        self.pump(popen.stderr, self.stderr)

    def line(self, want: str, deadline_s: float = 30.0) -> str:
        """The next stdout line with `want` in it, stripped; an error if none comes within `deadline_s`
        (a silent child included) or the child ends first."""
        got = self.next_line(lambda s: want in s, deadline_s)
        if got is None:
            raise RuntimeError(f"no {want!r} within {deadline_s} s (exit {self.popen.poll()}): "
                               f"{''.join(self.stderr)[-2000:]}")
        return got.strip()


def run_case(lab: Lab, name: str, workdir: Path, turn: bool | str, policy: str,
             extra: tuple[str, ...] = ()) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Relay on `relay`, `p2pdiag listen` on `b`, `p2pdiag dial` to its /webrtc address on `a`, in `lab`.

    Returns the dial and listen traces and the dial's process; `extra` goes to both peers.
    """
    if name.startswith("two-stun-"):
        extra = ("--stun", f"stun:{lab.topology.stun_alt_ip}:{lab.topology.stun_alt_port}", *extra)
    relay = _Child(lab.exec("relay", [PY, "-m", "p2pdiag.peers.pyrelay", "--host", lab.address("relay"),
                                      "--tcp-port", "4001"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    listener = None
    try:
        ready = json.loads(relay.line('"ready"'))
        relay_addr = ready["addrs"][0]
        listen_trace, dial_trace = workdir / "listen.jsonl", workdir / "dial.jsonl"
        listener = _Child(lab.exec("b", [PY, "-m", "p2pdiag", "listen", "--relay", relay_addr, "--trace",
                                         str(listen_trace), "--timeout", "30", *_ice_args(lab, turn, policy), *extra],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        listener.line("Dial me at")
        target = next(t for t in (listener.line("/p2p-circuit"), listener.line("/p2p-circuit")) if "/webrtc" in t)
        second_stun = (["--stun", f"stun:{lab.topology.stun_alt_ip}:{lab.topology.stun_port}"]
                       if name.startswith("probed-") else [])
        dial = lab.run("a", [PY, "-m", "p2pdiag", "dial", target, "--json", "--trace", str(dial_trace),
                             "--timeout", "25", *_ice_args(lab, turn, policy), *second_stun, *extra],
                       timeout=40, capture_output=True, text=True)
        time.sleep(1.0)
        return dial_trace, listen_trace, dial
    finally:
        for child in (listener, relay):
            if child is not None:
                child.stop()


def record(name: str) -> None:
    a, b, turn, policy = CASES[name]
    with Lab(Topology(a=a, b=b)) as lab, tempfile.TemporaryDirectory() as tmp:
        dial_trace, listen_trace, dial = run_case(lab, name, Path(tmp), turn, policy)
        shutil.copy(dial_trace, TRACES / f"{name}-dial.jsonl")
        if listen_trace.exists():
            shutil.copy(listen_trace, TRACES / f"{name}-listen.jsonl")
        print(f"recorded {name}: dial exit {dial.returncode}")


if __name__ == "__main__":
    for case in sys.argv[1:] or CASES:
        record(case)
