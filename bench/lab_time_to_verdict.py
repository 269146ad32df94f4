"""Time to verdict per lab scenario: each built-in scenario (p2pdiag/lab/scenarios/) run N times
in a fresh lab; medians printed. Needs root (and Node 22 from scripts/setup-js.sh for js rows).

    python bench/lab_time_to_verdict.py [N] [SCENARIO ...]      # N defaults to 3

Columns: `dial` is `p2pdiag dial` in LAN a, process start to verdict (it includes the scenario's
--hold); `offer→end` is from the SDP offer to the upgrade's success or failure, from the trace
(the issue asks a blocked-UDP verdict within 3 s of the offer); `whole` adds the lab's build and
teardown and the relay and listener start; `pass` counts runs whose verdict was the expected one.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from p2pdiag.lab.scenario import builtin_scenarios, load_scenario, run_scenario


def offer_to_end(events: list[dict]) -> float | None:
    offer = next((e["t_s"] for e in events if e["type"] == "webrtc.description_signaled"
                  and e.get("message") == "SDP_OFFER" and e.get("sent")), None)
    end = next((e["t_s"] for e in events if e["type"] in ("webrtc.upgrade_succeeded", "webrtc.upgrade_failed")), None)
    return None if offer is None or end is None else end - offer


def median(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.2f}" if xs else "     -"


def main() -> None:
    args = sys.argv[1:]
    n = int(args.pop(0)) if args and args[0].isdigit() else 3
    paths = [p for p in builtin_scenarios() if not args or p.stem in args]
    print(f"{'scenario':34} {'dial s':>6} {'offer→end s':>11} {'whole s':>7}  pass  outcome / findings (last run)")
    for path in paths:
        sc = load_scenario(path)
        dial, upgrade, whole, passed, last = [], [], [], 0, None
        for _ in range(n):
            with tempfile.TemporaryDirectory() as tmp:
                began = time.perf_counter()
                result = run_scenario(sc, Path(tmp))
                whole.append(time.perf_counter() - began)
                dial.append(result.time_to_verdict_s)
                o = offer_to_end(result.events())
                if o is not None:
                    upgrade.append(o)
                passed += result.passed
                last = result
        assert last is not None
        print(f"{sc.name:34} {median(dial)} {median(upgrade):>11} {median(whole):>7}  {passed}/{n}   "
              f"{last.doc.get('outcome')}: {', '.join(last.codes)}", flush=True)


if __name__ == "__main__":
    main()
