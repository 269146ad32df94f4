"""Write the `p2pdiag analyze --json` verdict of every recorded trace into a folder, to compare
before and after a change of structure:

    python3 scripts/verdict_snapshot.py /tmp/before      # on the old commit
    python3 scripts/verdict_snapshot.py /tmp/after       # on the new one
    diff -r /tmp/before /tmp/after && echo identical

Each verdict is named by its trace's content (a hash beside the file name), so a trace that moved
to another folder is still compared with itself. The p2pdiag version is left out of the document,
and the exit code is kept beside it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def traces() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.jsonl"], cwd=ROOT, capture_output=True, text=True, check=True)
    return sorted(ROOT / line for line in listed.stdout.splitlines() if line)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    found = traces()
    for path in found:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        done = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", str(path)], cwd=ROOT,
                              capture_output=True, text=True, check=False, timeout=60)
        try:
            document = json.loads(done.stdout)
            document.pop("p2pdiag_version", None)
        except json.JSONDecodeError:
            document = {"unparsed_stdout": done.stdout, "stderr": done.stderr}
        document["_exit_code"] = done.returncode
        (out / f"{path.stem}-{digest}.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"{len(found)} traces -> {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: verdict_snapshot.py OUTDIR")
    sys.exit(main(Path(sys.argv[1])))
