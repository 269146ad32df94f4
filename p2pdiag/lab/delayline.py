"""The lab's delay line: an L2 forwarder that holds every frame ``delay_ms`` (± ``jitter_ms``).

This project's kernels have neither the netem qdisc (CONFIG_NET_SCH_NETEM, no modules) nor the
nftables ``queue`` expression, so a router's delay cannot be a qdisc or an NFQUEUE delayer. Instead
a router that asks for delay gets a small namespace between its LAN host and itself::

    host a eth0 ⇄ veth ⇄ [ns delay-a: tohost ... torouter] ⇄ veth ⇄ router-a lan0

The delay namespace has no addresses, no routes, IPv6 off: its kernel takes no part. This module,
run as a script inside it, reads every frame on each side with an AF_PACKET socket (ETH_P_ALL,
interfaces promiscuous) and sends it out of the other side when its time has come. Being below IP
it leaves the routers' NAT, conntrack and firewall rules exactly as they are.

- Each direction crosses the line once, so a round trip through the router gets ``2 * delay_ms``,
  as netem on both router links would give.
- Without jitter every frame waits the same time: order is kept. With jitter each frame's delay is
  drawn uniformly from [delay - jitter, delay + jitter] (at least 0), so frames may be reordered,
  as netem's default jitter does.
- At most ``LIMIT`` frames wait per direction (netem's default limit, 1000); more are dropped and
  counted.
- Sockets use PACKET_VNET_HDR: a frame keeps its offload state (a TSO/GSO super-frame, a checksum
  left to the hardware) from one veth to the other, as if the two were wired together. Without it a
  frame with a partial checksum would reach the router broken, and a 64 KiB TCP segment could not
  be sent at all.
- Frames the socket sees leaving its own interface (PACKET_OUTGOING) are skipped: they are the
  line's own sends.

``DelayLine`` is the lab's handle on one such process: runner.py starts it after the namespace is
built, waits (bounded) until it is forwarding, and stops it before the namespace goes.
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SCRIPT = Path(__file__).resolve()
READY_LINE = "delay line ready"
READY_TIMEOUT_S = 5.0  # the script starts in ~50 ms; the lab waits at most this
STOP_TIMEOUT_S = 1.0  # between SIGTERM and SIGKILL
LIMIT = 1000  # frames waiting per direction, as netem's default limit
POLL_IDLE_S = 1.0  # longest sleep with nothing waiting (signals interrupt it anyway)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR_LEN = 10  # struct virtio_net_hdr
MAX_FRAME = VNET_HDR_LEN + 65535 + 14 + 4
SOCKET_BUFFER = 4 << 20


class DelayLineError(Exception):
    """The delay line did not start or died; the message carries the end of its log."""


def _open(ifname: str) -> socket.socket:
    # protocol 0 at creation: no frames queue up from every interface before bind() narrows it
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def forward(ifnames: Sequence[str], delay_s: float, jitter_s: float, limit: int = LIMIT,
            seed: int | None = None) -> dict[str, int]:
    """Forward frames between two interfaces until SIGTERM/SIGINT; return the counters."""
    socks = [_open(name) for name in ifnames]
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    poller = select.epoll()
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
    rng = random.Random(seed)
    waiting: list[tuple[float, int, int, bytes]] = []  # (due, seq, out side, frame): seq keeps FIFO
    queued = [0, 0]
    stats = {"forwarded": 0, "dropped_limit": 0, "dropped_send": 0}
    seq = 0
    print(f"{READY_LINE}: {ifnames[0]} <-> {ifnames[1]}, {delay_s * 1000:g} ms ± {jitter_s * 1000:g} ms",
          flush=True)
    try:
        while True:
            timeout = max(0.0, waiting[0][0] - time.monotonic()) if waiting else POLL_IDLE_S
            events = poller.poll(timeout)
            now = time.monotonic()
            for fd, _ in events:
                side = by_fd[fd]
                sock = socks[side]
                while True:
                    try:
                        frame, addr = sock.recvfrom(MAX_FRAME)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING:
                        continue
                    out = 1 - side
                    if queued[out] >= limit:
                        stats["dropped_limit"] += 1
                        continue
                    d = delay_s if not jitter_s else max(0.0, rng.uniform(delay_s - jitter_s, delay_s + jitter_s))
                    heapq.heappush(waiting, (now + d, seq, out, frame))
                    seq += 1
                    queued[out] += 1
            now = time.monotonic()
            while waiting and waiting[0][0] <= now:
                _, _, out, frame = heapq.heappop(waiting)
                queued[out] -= 1
                try:
                    socks[out].send(frame)
                    stats["forwarded"] += 1
                except OSError:  # ENOBUFS, a link going away: a lost frame, as on a wire
                    stats["dropped_send"] += 1
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        poller.close()
        for s in socks:
            s.close()
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side_a")
    parser.add_argument("side_b")
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--limit", type=int, default=LIMIT)
    args = parser.parse_args(argv)
    if args.delay_ms < 0 or args.jitter_ms < 0 or args.limit < 1:
        parser.error("delay, jitter and limit must not be negative (limit at least 1)")

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        stats = forward([args.side_a, args.side_b], args.delay_ms / 1000, args.jitter_ms / 1000, args.limit)
    except OSError as e:
        print(f"delay line failed: {e}", file=sys.stderr, flush=True)
        return 1
    print("delay line stopped: " + ", ".join(f"{k} {v}" for k, v in stats.items()), flush=True)
    return 0


class DelayLine:
    """One forwarder process in a delay namespace, started and stopped by the lab."""

    def __init__(self, namespace: str, ifnames: tuple[str, str], delay_ms: float, jitter_ms: float,
                 log_path: Path) -> None:
        self.namespace = namespace
        self.ifnames = ifnames
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, sys.executable, str(SCRIPT), *self.ifnames,
                "--delay-ms", f"{self.delay_ms:g}", "--jitter-ms", f"{self.jitter_ms:g}"]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        with open(self.log_path, "wb") as log:
            # its own session, as coturn: Ctrl-C must not end it before teardown does, and a detached
            # lab keeps it after its owner exits (teardown kills what is left in the namespace)
            self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while READY_LINE not in self.log_tail():
            if self.process.poll() is not None:
                raise DelayLineError(f"delay line in {self.namespace} exited with status "
                                     f"{self.process.returncode}: {self.log_tail().strip() or '(no output)'}")
            if time.monotonic() > deadline:
                self.stop()
                raise DelayLineError(f"delay line in {self.namespace} not forwarding after {timeout_s} s: "
                                     f"{self.log_tail().strip() or '(no output)'}")
            time.sleep(0.01)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # p2pdiag.lab.proc is imported here, not at the top: run as a script this file stands alone

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        from p2pdiag.lab import proc as procs

        proc, self.process = self.process, None
        procs.stop(proc, timeout_s)

    def log_tail(self, chars: int = 600) -> str:
        from p2pdiag.lab import proc as procs

        return procs.log_tail(self.log_path, chars)


if __name__ == "__main__":
    sys.exit(main())
