"""The CPU cost of `p2pdiag listen`'s live view per inbound attempt, over a long listen.

    python bench/listen_attempts.py [N] [--old-samples K] [--seed S]     # N defaults to 1,000

A listen of N inbound attempts is made of recorded ones (tests/support/listen_attempts.py: the
attempts of every recorded listen trace, with fresh connection ids and shifted times; the dialers
as recorded, so one dialer's failed rounds make reconnect loops hundreds of rounds long). Its
events are recorded one by one into a Recorder as `listen`'s (on the trace's own times), and when
an attempt ends (its circuit's close, or its failed handshake) the bench does what `listen` does:

  new  cli/listen.py's `attempt_ended`: the attempt told from its own events by diagnosis/listen_live.py,
       whose LiveListen is a sink of the Recorder (its cost per event is counted in the attempt's).
  old  `listen`'s on_inbound_ended before issue 13, kept below as it was: the trace so far diagnosed
       whole (diagnose_listen with indexed=False, the diagnosis as it was), then that attempt's steps.
  old+index  the same with today's diagnose_listen (attempts indexed): the whole trace still read
       each time, each attempt once.

Both render to a console as `listen` does on a pipe (rich, 120 columns), and the bench checks the
text is the same. CPU time (time.process_time) per attempt is printed for attempts 1-100, the
hundred around N/2 and the last hundred: the new view for every attempt; the old ones, which
grow with the trace (the old one quadratically: minutes per attempt at 1,000), for K attempts
spread over each window (default 5; 0: the new view only). Then the memory the events and the live view keep per
attempt (tracemalloc), and the load average before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import io
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from rich.console import Console
from support.listen_attempts import long_listen, moments, shown_before

from p2pdiag import __version__
from p2pdiag.cli.listen import attempt_ended
from p2pdiag.diagnosis.listen import diagnose_listen
from p2pdiag.diagnosis.listen_live import LiveListen
from p2pdiag.trace.events import Event
from p2pdiag.trace.file import Header, Trace
from p2pdiag.trace.recorder import Recorder


def console() -> Console:
    return Console(file=io.StringIO(), highlight=False, soft_wrap=True, width=120)


def old_attempt_ended(rec: Recorder, options: dict, cid: str, out: Console, indexed: bool) -> None:
    """cli/listen.py's on_inbound_ended at 281626d, without --redact (tests/support/listen_attempts.py)."""
    shown_before(Trace(Header("listen", options, "", __version__), rec.events), cid, out, indexed)


class Clock:
    """The Recorder's clock: the trace's own times, so what it records is what was recorded."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def record(rec: Recorder, clock: Clock, e: Event) -> None:
    clock.t = e.t_s
    rec.record(type(e), **{f.name: getattr(e, f.name) for f in dataclasses.fields(e) if f.name != "t_s"})


def windows(n: int) -> list[range]:
    mid = n // 2
    return [range(1, min(100, n) + 1), range(max(1, mid - 49), min(n, mid + 50) + 1), range(max(1, n - 99), n + 1)]


def sampled(window: range, k: int) -> set[int]:
    if k <= 0:
        return set()
    if k == 1:
        return {window[-1]}
    return {window[round(i * (len(window) - 1) / (k - 1))] for i in range(k)}


def run(n: int, seed: int, old_samples: int) -> None:
    trace = long_listen(n, seed=seed)
    ends = dict(moments(trace.events))
    number = {cid: int(cid.rsplit("-", 1)[1]) for cid in ends.values()}
    wins = windows(n)
    old_at = set().union(*(sampled(w, old_samples) for w in wins))
    print(f"{n} attempts, {len(trace.events)} events; {len(ends)} attempts end before the run does; "
          f"old paths sampled at {old_samples} attempts a window", flush=True)

    new_clock, old_clock = Clock(), Clock()
    new_rec, old_rec = Recorder(new_clock), Recorder(old_clock)
    live = LiveListen()
    new_rec.add_sink(live.add)
    new_cpu: dict[int, float] = {}
    old_cpu: dict[int, float] = {}
    indexed_cpu: dict[int, float] = {}
    same = 0
    fed_new = fed_old = 0.0
    for i, e in enumerate(trace.events):
        c0 = time.process_time()
        record(new_rec, new_clock, e)
        c1 = time.process_time()
        record(old_rec, old_clock, e)
        c2 = time.process_time()
        fed_new += c1 - c0
        fed_old += c2 - c1
        cid = ends.get(i)
        if cid is None:
            continue
        k = number[cid]
        out_new = console()
        c0 = time.process_time()
        attempt_ended(live, cid, out_new)
        new_cpu[k] = fed_new + time.process_time() - c0
        fed_new = 0.0
        if k in old_at:
            outs = []
            for indexed, into in ((False, old_cpu), (True, indexed_cpu)):
                out = console()
                c0 = time.process_time()
                old_attempt_ended(old_rec, trace.header.options, cid, out, indexed)
                into[k] = fed_old + time.process_time() - c0
                outs.append(out.file.getvalue())
            fed_old = 0.0
            if outs[0] == outs[1] == out_new.file.getvalue():
                same += 1
            else:
                print(f"  DIFFERENT text for {cid}", flush=True)
            print(f"  attempt {k}: new {new_cpu[k] * 1000:.2f} ms, old {old_cpu[k] * 1000:.1f} ms, "
                  f"old+index {indexed_cpu[k] * 1000:.1f} ms", flush=True)

    print(f"\nCPU per attempt, ms (median; mean; the attempts measured). Text shown identical at {same} of "
          f"{len(old_cpu)} sampled attempts.")
    print(f"{'attempts':>12}  {'new (every attempt)':>26}  {'old (as at 281626d)':>26}  {'old + index':>24}")
    for w in wins:
        cells = []
        for cpu in (new_cpu, old_cpu, indexed_cpu):
            got = [cpu[k] * 1000 for k in w if k in cpu]
            cells.append(f"{statistics.median(got):8.2f}; {statistics.mean(got):8.2f} ({len(got):3d})" if got
                         else "-")
        print(f"{w[0]:>5}-{w[-1]:<6}  {cells[0]:>26}  {cells[1]:>26}  {cells[2]:>24}")

    c0 = time.process_time()
    diagnose_listen(Trace(trace.header, new_rec.events))
    print(f"\nthe final verdict (diagnose_listen of the whole trace, indexed): {time.process_time() - c0:.2f} s CPU")
    memory(trace)


def memory(trace: Trace) -> None:
    """What a Recorder (as listen's: it keeps every event) and the LiveListen keep, per attempt."""
    attempts = sum(1 for _ in moments(trace.events)) or 1
    sizes = []
    for with_live in (False, True):
        clock = Clock()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        rec = Recorder(clock)
        live = LiveListen()
        if with_live:
            rec.add_sink(live.add)
        for e in trace.events:
            record(rec, clock, e)
        gc.collect()
        sizes.append(tracemalloc.get_traced_memory()[0] - base)
        tracemalloc.stop()
        del rec, live
    print(f"memory kept: the Recorder's events {sizes[0] / attempts / 1024:.1f} KiB per attempt "
          f"({sizes[0] / 2**20:.1f} MiB); the live view beside them {(sizes[1] - sizes[0]) / attempts / 1024:.1f} "
          f"KiB per attempt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--old-samples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    run(args.n, args.seed, args.old_samples)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
