"""`p2pdiag analyze` of large traces: wall time and peak RSS of the process, beside plain JSON parsing.

Builds realistic long traces from the recorded ones in tests/traces/ (their events repeated, times
and connection ids shifted so each is a valid trace):

- dial-hold: `dial --hold` (relay/dial-py-duration-cut.jsonl) held for hours, a relayed ping and a
  circuit.traffic every ping interval, then the relay's cut;
- listen: `listen` (network/cone-cone-listen.jsonl) with many inbound attempts, each one the
  recorded attempt (STOP, secure, the WebRTC upgrade failing at ICE) held for a while with the
  dialer's pings served and the circuit's traffic every second before it closes;
- watch: `watch` of 200 targets (relays and peers), one watch.probed a probe, a fault now and then.

For each size, in ONE run: `python -m p2pdiag analyze FILE --json` as a child process (its wall
time and peak RSS from wait4), and the reference: a child python that json.loads every line of the
same file in a loop. p2pdiag's modules are compiled first (__pycache__, as an install has them: this
machine sets PYTHONDONTWRITEBYTECODE). With --before DIR the same analyze is run with the tree at DIR first on the
path too (e.g. an export of the commit before the change), so before and after come from one run.

    python3 bench/analyze_large.py [--sizes 100000,400000,1000000] [--kinds dial-hold,listen,watch]
                                   [--before DIR] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "tests" / "traces"


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shifted(e: dict, dt: float, **changes: object) -> dict:
    out = dict(e)
    out["t_s"] = round(e["t_s"] + dt, 6)
    out.update(changes)
    return out


def dial_hold(n: int, out) -> None:
    """A dial held until about N events: the recorded prefix up to hold.started, then a relayed ping
    and a circuit.traffic each ping interval, then the recorded end (the relay's cut), shifted."""
    lines = _read(TRACES / "relay" / "dial-py-duration-cut.jsonl")
    header, events = lines[0], lines[1:]
    k = next(i for i, e in enumerate(events) if e["type"] == "hold.started")
    hold = events[k]
    end = next(i for i, e in enumerate(events) if e["type"] == "circuit.closed")
    prefix, tail = events[:k + 1], events[end:]
    ping = next(e for e in events[k:] if e["type"] == "ping.completed")
    traffic = next(e for e in events[k:] if e["type"] == "circuit.traffic")
    interval = hold["ping_interval_s"]
    periods = max(1, (n - len(prefix) - len(tail)) // 2)
    header = dict(header, options=dict(header["options"], hold_s=periods * interval + 10))
    out.write(_dumps(header) + "\n")
    for e in prefix:
        out.write(_dumps(e if e is not hold else dict(e, hold_s=periods * interval + 10)) + "\n")
    for p in range(periods):
        dt = p * interval
        out.write(_dumps(_shifted(ping, dt, rtt_s=round(0.006 + (p % 7) * 0.0004, 6))) + "\n")
        out.write(_dumps(_shifted(traffic, dt, bytes_sent=traffic["bytes_sent"] + 92 * p,
                                  bytes_received=traffic["bytes_received"] + 92 * p,
                                  age_s=round(traffic["age_s"] + dt, 6))) + "\n")
    dt = (periods - 1) * interval
    for e in tail:
        changes = {}
        if "age_s" in e:
            changes["age_s"] = round(e["age_s"] + dt, 6)
        if "bytes_sent" in e:
            changes["bytes_sent"] = e["bytes_sent"] + 92 * periods
            changes["bytes_received"] = e["bytes_received"] + 92 * periods
        out.write(_dumps(_shifted(e, dt, **changes)) + "\n")


HELD_S = 240  # each inbound connection held this long: one ping served and one traffic count a second


def listen(n: int, out) -> None:
    """A listen with inbound attempts until about N events: the recorded attempt, renamed, each held
    HELD_S seconds (the dialer's pings served, the circuit's traffic) before it closes."""
    lines = _read(TRACES / "network" / "cone-cone-listen.jsonl")
    header, events = lines[0], lines[1:]
    start = next(i for i, e in enumerate(events) if e["type"] == "stop.connect_received")
    close = next(i for i, e in enumerate(events) if e["type"] == "circuit.closed")
    prefix, block, closed = events[:start], events[start:close], events[close]
    tail = events[close + 1:]
    cid = closed["connection_id"]
    per = len(block) + 2 * HELD_S + 1
    attempts = max(1, (n - len(prefix) - len(tail)) // per)
    span = block[-1]["t_s"] - block[0]["t_s"] + HELD_S + 5.0
    out.write(_dumps(header) + "\n")
    for e in prefix:
        out.write(_dumps(e) + "\n")
    last = 0.0
    for a in range(attempts):
        dt = a * span
        rename = {cid: f"{cid}-{a}", f"webrtc-{cid}": f"webrtc-{cid}-{a}"}
        for e in block:
            changed = {k: rename[v] for k, v in e.items() if isinstance(v, str) and v in rename}
            out.write(_dumps(_shifted(e, dt, **changed)) + "\n")
        base = block[-1]["t_s"] + dt
        for s in range(HELD_S):
            t = round(base + 1.0 + s, 6)
            out.write(_dumps({"type": "ping.served", "t_s": t, "connection_id": f"{cid}-{a}", "count": 3 + s}) + "\n")
            out.write(_dumps({"type": "circuit.traffic", "t_s": round(t + 0.0001, 6), "connection_id": f"{cid}-{a}",
                              "bytes_sent": 5532 + 92 * s, "bytes_received": 5193 + 92 * s,
                              "age_s": round(t - block[1]["t_s"] - dt, 6)}) + "\n")
        last = base + HELD_S + 1.0
        out.write(_dumps(_shifted(closed, last - closed["t_s"], connection_id=f"{cid}-{a}",
                                  bytes_sent=5532 + 92 * HELD_S, bytes_received=5193 + 92 * HELD_S,
                                  age_s=round(closed["age_s"] + HELD_S + 1.0, 6))) + "\n")
    for e in tail:
        out.write(_dumps(_shifted(e, last + 1.0 - e["t_s"])) + "\n")


def watch(n: int, out) -> None:
    """A watch of 200 targets (100 relays, 100 peers with two paths each) probed every 30 s until N
    events, a peer failing now and then (a peer-down change and the change that ends it)."""
    header = {"type": "p2pdiag.trace", "schema_version": 1, "p2pdiag_version": "0.1.0", "command": "watch",
              "options": {"config": "fleet.toml"}, "started_at": "2026-12-07T00:00:00+00:00", "libraries": {}}
    relay = "/ip4/198.51.100.{k}/tcp/4001/p2p/12D3KooWRelay{k:04d}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    peer = "12D3KooWPeer{k:04d}yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
    out.write(_dumps(header) + "\n")
    out.write(_dumps({"type": "watch.started", "t_s": 0.0, "started_unix_s": 1796601600.0, "targets": 200}) + "\n")
    targets = []
    for k in range(100):
        targets.append(("relay", f"relay-{k}", relay.format(k=k)))
        targets.append(("peer", f"peer-{k}", peer.format(k=k)))
    for module, target, what in targets:
        out.write(_dumps({"type": "watch.target_listed", "t_s": 0.0, "module": module, "target": target,
                          "interval_s": 30.0, "timeout_s": 10.0, "what": what}) + "\n")
    written = 2 + len(targets)
    rnd = 0
    while written < n:
        for j, (module, target, what) in enumerate(targets):
            t = round(rnd * 30.0 + j * 0.15, 6)
            down = module == "peer" and (rnd + j) % 97 == 0
            if module == "relay":
                e = {"type": "watch.probed", "t_s": t, "module": module, "target": target, "ok": True,
                     "duration_s": 0.031, "phases": ["connect", "identify", "reserve"],
                     "phase_durations_s": [0.012, 0.009, 0.01], "agent": "go-libp2p/0.36.2",
                     "listen_addrs": [what.split("/p2p/")[0]], "reservation_status": "OK",
                     "limit_duration_s": 120.0, "limit_data_bytes": 131072}
            else:
                paths = [f"/ip4/203.0.113.{j % 250}/udp/4001/quic-v1", f"/ip4/203.0.113.{j % 250}/tcp/4001"]
                e = {"type": "watch.probed", "t_s": t, "module": module, "target": target, "ok": not down,
                     "duration_s": 0.044, "phases": ["dial", "identify"], "phase_durations_s": [0.03, 0.014],
                     "failed_phase": "dial" if down else None, "error_kind": "timeout" if down else None,
                     "agent": "js-libp2p/3.3.11", "listen_addrs": paths, "paths": paths,
                     "paths_ok": [not down, not down]}
            out.write(_dumps(e) + "\n")
            written += 1
            if module == "peer" and ((rnd + j) % 97 in (0, 1)):
                out.write(_dumps({"type": "watch.changed", "t_s": round(t + 0.001, 6), "change": "peer-down",
                                  "module": module, "target": target, "detail": "no path completed identify",
                                  "bad": (rnd + j) % 97 == 0, "subject": what}) + "\n")
                written += 1
            if written >= n:
                break
        rnd += 1


KINDS = {"dial-hold": dial_hold, "listen": listen, "watch": watch}

REFERENCE = ("import sys\nimport json\nwith open(sys.argv[1], 'rb') as f:\n"
             "    for line in f:\n        json.loads(line)\n")


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[float | None, float, float, int]:
    """(wall seconds or None past the timeout, CPU seconds, peak RSS in MB, exit status) of one child process."""
    began = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = began + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            wall = time.perf_counter() - began
            proc.returncode = os.waitstatus_to_exitcode(status)
            return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, -9
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,400000,1000000")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--before", type=Path, help="a tree of the code before the change, run beside this one")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one analyze may take")
    opts = parser.parse_args()
    trees = ([("before", opts.before.resolve())] if opts.before else []) + [("this tree", ROOT)]
    for _, tree in trees:  # as a user's install has them: no run pays for compiling p2pdiag's modules
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "p2pdiag")], check=True,
                       stdout=subprocess.DEVNULL)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"python {sys.version.split()[0]}; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}")
    print(f"{'trace':10s} {'events':>9s} {'MB':>6s}  {'run':28s} {'wall s':>8s} {'CPU s':>7s} "
          f"{'peak RSS MB':>12s}  exit")
    with tempfile.TemporaryDirectory(prefix="analyze-large-") as tmp:
        for kind in opts.kinds.split(","):
            for size in (int(s) for s in opts.sizes.split(",")):
                path = Path(tmp) / f"{kind}-{size}.jsonl"
                with path.open("w") as out:
                    KINDS[kind](size, out)
                events = sum(1 for _ in path.open("rb")) - 1
                mb = path.stat().st_size / 1e6
                rows = [("json.loads each line", [sys.executable, "-c", REFERENCE, str(path)], ROOT)]
                rows += [(f"analyze --json ({name})", [sys.executable, "-m", "p2pdiag", "analyze", str(path), "--json"],
                          tree) for name, tree in trees]
                for name, args, cwd in rows:
                    env = dict(os.environ, PYTHONPATH=str(cwd))
                    wall, cpu, rss, code = run(args, cwd, env, opts.timeout)
                    shown = f"{wall:8.2f}" if wall is not None else f">{opts.timeout:7.0f}"
                    print(f"{kind:10s} {events:9d} {mb:6.0f}  {name:28s} {shown} {cpu:7.2f} {rss:12.1f}  {code}",
                          flush=True)
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
