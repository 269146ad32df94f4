"""Builds, runs things in, and always tears down a lab of network namespaces.

Every namespace of a lab is named ``p2pdiag-<8 hex lab id>-<host>``; a state directory
``/run/p2pdiag/labs/<lab id>/`` holds its topology, owner and coturn's config and log. That is
enough to find and remove leftovers from a crash, and to leave alone a lab that another live
process (a parallel test run) owns. Nothing is ever created in the host's own namespace.

A router with delay gets a delay line (delayline.py) in its LAN's delay namespace: the lab starts it
in ``up()`` (or ``set_router()``), waits until it forwards, and stops it in ``down()``; teardown
also kills whatever is left in any of the lab's namespaces, so a crashed owner leaves none behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from p2pdiag.lab import netns
from p2pdiag.lab.coturn import Coturn
from p2pdiag.lab.delayline import DelayLine, DelayLineError
from p2pdiag.lab.netns import Command
from p2pdiag.lab.proc import wait_or_kill
from p2pdiag.lab.topology import LAN_NAMES, STUN, Router, Topology

STATE_ROOT = Path("/run/p2pdiag/labs")
COMMAND_TIMEOUT_S = 20.0  # one ip/nft/sysctl call; they take milliseconds
KILL_GRACE_S = 1.0  # between SIGTERM and SIGKILL for processes left in a lab's namespaces


class LabError(Exception):
    """The lab cannot be built or used; the message says what to do."""


class NeedsRoot(LabError):
    def __init__(self) -> None:
        super().__init__("the lab needs root (network namespaces, veth, nftables): run it as root, e.g. with sudo")


class LabCommandError(LabError):
    def __init__(self, command: Command, returncode: int, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"lab: could not {command.why}: `{shlex.join(command.argv)}` exited {returncode}: "
                         f"{stderr.strip() or '(no error output)'}")


def require_root() -> None:
    if os.geteuid() != 0:
        raise NeedsRoot()


def require_tools() -> None:
    missing = [exe for exe in ("ip", "nft", "conntrack", "sysctl", "turnserver") if not shutil.which(exe)]
    if missing:
        raise LabError(f"the lab needs {', '.join(missing)}: run scripts/setup-lab.sh (as root)")


def run_command(command: Command, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command.argv, input=command.input, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except FileNotFoundError as e:
        raise LabError(f"lab: could not {command.why}: {e.filename} not found (run scripts/setup-lab.sh)") from e
    except subprocess.TimeoutExpired as e:
        raise LabError(f"lab: could not {command.why}: `{shlex.join(command.argv)}` took over "
                       f"{COMMAND_TIMEOUT_S} s") from e
    if check and done.returncode != 0:
        raise LabCommandError(command, done.returncode, done.stderr)
    return done


def run_commands(commands: Sequence[Command]) -> None:
    for command in commands:
        run_command(command)


def existing_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    # lines look like "name" or "name (id: 3)"
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) in the main thread, so ``with Lab(...)`` still tears down
    when a CI runner or ``kill`` ends the process (Ctrl-C already raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Let a teardown finish when Ctrl-C comes in the middle of it; raise KeyboardInterrupt after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a live owner from a new process that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def namespace_pids(namespace: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False,
                         timeout=COMMAND_TIMEOUT_S)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def _kill_namespace_processes(namespace: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = namespace_pids(namespace)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + KILL_GRACE_S
        while namespace_pids(namespace) and time.monotonic() < deadline:
            time.sleep(0.02)


def teardown(lab_id: str, state_root: Path = STATE_ROOT) -> list[str]:
    """Remove every trace of lab ``lab_id`` that exists; return the problems (empty if none)."""
    problems = []
    present = set(existing_namespaces())
    for command in netns.down_commands(lab_id):
        name = command.argv[-1]
        if name not in present:
            continue
        _kill_namespace_processes(name)
        done = run_command(command, check=False)
        if done.returncode != 0:
            problems.append(f"{shlex.join(command.argv)}: {done.stderr.strip()}")
    shutil.rmtree(state_root / lab_id, ignore_errors=True)
    return problems


@dataclass(frozen=True, slots=True)
class LabInfo:
    """A lab found on this machine, by its namespaces and its state directory."""

    lab_id: str
    namespaces: tuple[str, ...]
    owner_pid: int | None
    owner_alive: bool
    detached: bool

    @property
    def leftover(self) -> bool:
        return not self.owner_alive and not self.detached


@dataclass(frozen=True, slots=True)
class HostStatus:
    namespace: str
    present: bool
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabStatus:
    lab_id: str
    up: bool
    coturn_running: bool
    stun_url: str
    turn_url: str
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per LAN whose router has delay: namespace, pids of the delay line, running, delay_ms, jitter_ms
    delay_lines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"lab_id": self.lab_id, "up": self.up, "coturn_running": self.coturn_running,
                "stun_url": self.stun_url, "turn_url": self.turn_url,
                "hosts": {h: {"namespace": s.namespace, "present": s.present, "addresses": list(s.addresses)}
                          for h, s in self.hosts.items()},
                "routers": self.routers, "delay_lines": self.delay_lines}


_live_labs: weakref.WeakSet[Lab] = weakref.WeakSet()


@atexit.register
def _down_live_labs() -> None:
    for lab in list(_live_labs):
        if not lab.detached:
            with contextlib.suppress(Exception):
                lab.down()


class Lab:
    """A lab of namespaces. ``with Lab(Topology(a=Router(nat="symmetric"))) as lab: ...``

    ``up()`` builds it (and tears down whatever it built if anything fails or is interrupted);
    ``down()`` is idempotent and also runs at interpreter exit for labs not detached.
    """

    def __init__(self, topology: Topology | None = None, lab_id: str | None = None,
                 state_root: Path = STATE_ROOT) -> None:
        self.topology = topology or Topology()
        self.lab_id = lab_id or secrets.token_hex(4)
        self.state_root = state_root
        self.state_dir = state_root / self.lab_id
        self.coturn = Coturn(self.topology, self.namespace(STUN), self.state_dir)
        self.detached = False
        self.up_s: float | None = None
        self.down_s: float | None = None
        self._processes: list[subprocess.Popen[Any]] = []
        self._delay_lines: dict[str, DelayLine] = {}
        self._built = False

    # --- life cycle ---

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Self:
        require_root()
        require_tools()
        if self._built:
            raise LabError(f"lab {self.lab_id} is already up")
        start = time.monotonic()
        self._built = True  # from here on down() has something to remove
        _live_labs.add(self)
        try:
            self._create_state_dir()
            run_commands(netns.up_commands(self.topology, self.lab_id))
            for lan in LAN_NAMES:
                self._start_delay_line(lan)
            self.coturn.start()
        except BaseException:
            self.down()
            raise
        self.up_s = time.monotonic() - start
        return self

    def down(self) -> None:
        """Stop everything the lab started and delete its namespaces. Safe to call twice."""
        if not self._built:
            return
        start = time.monotonic()
        with _sigint_deferred():
            for proc in self._processes:
                if proc.poll() is None:
                    proc.terminate()
            self.coturn.stop()
            for line in self._delay_lines.values():
                line.stop()
            self._delay_lines.clear()
            for proc in self._processes:
                wait_or_kill(proc, KILL_GRACE_S)  # SIGTERM went to all of them above: not twice
            self._processes.clear()
            problems = teardown(self.lab_id, self.state_root)
            self._built = False
            _live_labs.discard(self)
        self.down_s = time.monotonic() - start
        if problems:
            raise LabError(f"lab {self.lab_id}: teardown left problems: {'; '.join(problems)}")

    def detach(self) -> None:
        """Keep the lab after this process exits (`p2pdiag lab up`); `Lab.attach(id).down()` removes it."""
        self.detached = True
        self._write_state()
        _live_labs.discard(self)
        self.coturn.process = None  # in its own session already; forget it, don't stop it
        for line in self._delay_lines.values():
            line.process = None  # the same
        self._delay_lines.clear()
        self._processes.clear()

    @classmethod
    def attach(cls, lab_id: str, state_root: Path = STATE_ROOT) -> Lab:
        """A handle on an existing lab (made by another process), to use, inspect or remove it."""
        try:
            state = json.loads((state_root / lab_id / "lab.json").read_text())
        except (OSError, ValueError) as e:
            raise LabError(f"no lab {lab_id!r} (no readable {state_root / lab_id / 'lab.json'})") from e
        lab = cls(Topology.from_dict(state["topology"]), lab_id=lab_id, state_root=state_root)
        lab.detached = bool(state.get("detached"))
        lab._built = True
        return lab

    def _create_state_dir(self) -> None:
        # built under a name list_labs ignores, then renamed: another process's cleanup_leftovers
        # never sees a lab directory without its owner in it
        self.state_root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_root / f".{self.lab_id}.new"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self._write_state(tmp)
        tmp.rename(self.state_dir)

    def _write_state(self, directory: Path | None = None) -> None:
        directory = directory or self.state_dir
        state = {"lab_id": self.lab_id, "owner_pid": os.getpid(),
                 "owner_start": _process_start_time(os.getpid()), "detached": self.detached,
                 "topology": self.topology.to_dict()}
        tmp = directory / "lab.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(directory / "lab.json")

    # --- finding labs ---

    @staticmethod
    def list_labs(state_root: Path = STATE_ROOT) -> list[LabInfo]:
        found: dict[str, list[str]] = {}
        for name in existing_namespaces():
            parsed = netns.parse_namespace(name)
            if parsed:
                found.setdefault(parsed[0], []).append(name)
        if state_root.is_dir():
            for d in state_root.iterdir():
                if netns.LAB_ID_RE.match(d.name):
                    found.setdefault(d.name, [])
        labs = []
        for lab_id, names in sorted(found.items()):
            pid, alive, detached = None, False, False
            with contextlib.suppress(OSError, ValueError, KeyError):
                state = json.loads((state_root / lab_id / "lab.json").read_text())
                pid, detached = int(state["owner_pid"]), bool(state.get("detached"))
                alive = state.get("owner_start") is not None and _process_start_time(pid) == state["owner_start"]
            labs.append(LabInfo(lab_id, tuple(sorted(names)), pid, alive, detached))
        return labs

    @classmethod
    def cleanup_leftovers(cls, include_detached: bool = False, state_root: Path = STATE_ROOT) -> list[str]:
        """Remove labs whose owner process is gone (and detached ones if asked); return their ids.

        Labs owned by a live process (a test run in parallel) are left alone.
        """
        require_root()
        removed = []
        for info in cls.list_labs(state_root):
            if info.leftover or (include_detached and info.detached):
                teardown(info.lab_id, state_root)
                removed.append(info.lab_id)
        return removed

    # --- using a lab ---

    def namespace(self, host: str) -> str:
        if host not in self.topology.hosts():
            raise KeyError(f"no host {host!r} in the lab; hosts are {sorted(self.topology.hosts())}")
        return netns.namespace(self.lab_id, host)

    def address(self, host: str) -> str:
        """The host's address (a router's WAN address; the STUN host's main one)."""
        self.namespace(host)
        return self.topology.hosts()[host]

    def netns_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed so that it runs inside the host's namespace."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def exec(self, host: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside ``host``'s namespace; down() ends it if it is still running."""
        proc = subprocess.Popen(self.netns_argv(host, argv), **popen_kwargs)
        self._processes.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], timeout: float = 30.0, check: bool = False,
            **run_kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command inside ``host``'s namespace to completion (subprocess.run's arguments)."""
        return subprocess.run(self.netns_argv(host, argv), timeout=timeout, check=check, **run_kwargs)

    def set_router(self, lan: str, router: Router) -> None:
        """Change a router's NAT, filtering, UDP policy or impairment in place and flush its mappings.

        Much faster than a new lab. Changing to or from nat="none" needs a new lab (routes).
        """
        old = self.topology.router(lan)
        if (old.nat == "none") != (router.nat == "none"):
            raise LabError("changing a router to or from nat='none' changes routes: build a new lab")
        self.topology = self.topology.with_router(lan, router)
        self.coturn.topology = self.topology
        self._write_state()
        if old.impairment != router.impairment and (netns.has_delay(old) or netns.has_delay(router)):
            self._stop_delay_line(lan)
            if netns.has_delay(old) != netns.has_delay(router):
                # the LAN link gains or loses its middle namespace: rebuild it (a few ms without link)
                run_commands(netns.relink_commands(self.topology, self.lab_id, lan, had_delay=netns.has_delay(old)))
            self._start_delay_line(lan)
        run_commands(netns.router_commands(self.topology, self.lab_id, lan))

    # --- delay lines ---

    def _delay_line(self, lan: str) -> DelayLine:
        imp = self.topology.router(lan).impairment
        return DelayLine(netns.namespace(self.lab_id, netns.delay_name(lan)),
                         (netns.DELAY_HOST_IF, netns.DELAY_ROUTER_IF), imp.delay_ms, imp.jitter_ms,
                         self.state_dir / f"{netns.delay_name(lan)}.log")

    def _start_delay_line(self, lan: str) -> None:
        """Start LAN ``lan``'s delay line if its router has delay; LabError if it does not forward."""
        if not netns.has_delay(self.topology.router(lan)):
            return
        line = self._delay_line(lan)
        self._delay_lines[lan] = line
        try:
            line.start()
        except DelayLineError as e:
            raise LabError(f"lab: router-{lan}'s delay line did not start: {e}") from e

    def _stop_delay_line(self, lan: str) -> None:
        line = self._delay_lines.pop(lan, None)
        if line is not None:
            line.stop()
        # one started by another process (an attached lab) is found by its namespace
        _kill_namespace_processes(netns.namespace(self.lab_id, netns.delay_name(lan)))

    # --- STUN/TURN ---

    @property
    def stun_url(self) -> str:
        return f"stun:{self.topology.stun_ip}:{self.topology.stun_port}"

    @property
    def turn_url(self) -> str:
        return f"turn:{self.topology.stun_ip}:{self.topology.stun_port}?transport=udp"

    @property
    def turn_username(self) -> str:
        return self.topology.turn_user

    @property
    def turn_password(self) -> str:
        return self.topology.turn_password

    def ice_servers(self, turn: bool = True) -> list[dict[str, str]]:
        """RTCIceServer dictionaries (the shape aiortc and browsers take)."""
        servers = [{"urls": self.stun_url}]
        if turn:
            servers.append({"urls": self.turn_url, "username": self.turn_username,
                            "credential": self.turn_password})
        return servers

    # --- inspecting ---

    def status(self) -> LabStatus:
        present = set(existing_namespaces())
        hosts = {}
        for host in self.topology.hosts():
            ns = netns.namespace(self.lab_id, host)
            addrs: tuple[str, ...] = ()
            if ns in present:
                out = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show"], capture_output=True, text=True,
                                     check=False)
                addrs = tuple(f"{f[1]} {f[3]}" for f in (line.split() for line in out.stdout.splitlines())
                              if f[1] != "lo")
            hosts[host] = HostStatus(ns, ns in present, addrs)
        coturn_up = bool(self.coturn.udp_sockets()) if netns.namespace(self.lab_id, STUN) in present else False
        delay_lines = {}
        for lan in LAN_NAMES:
            imp = self.topology.router(lan).impairment
            if netns.has_delay(self.topology.router(lan)):
                ns = netns.namespace(self.lab_id, netns.delay_name(lan))
                pids = namespace_pids(ns) if ns in present else []
                delay_lines[lan] = {"namespace": ns, "present": ns in present, "pids": pids,
                                    "running": bool(pids), "delay_ms": imp.delay_ms, "jitter_ms": imp.jitter_ms}
        up = (all(h.present for h in hosts.values()) and netns.namespace(self.lab_id, netns.SWITCH) in present
              and all(d["running"] for d in delay_lines.values()))
        return LabStatus(self.lab_id, up=up, coturn_running=coturn_up, stun_url=self.stun_url,
                         turn_url=self.turn_url, hosts=hosts,
                         routers={lan: self.topology.router(lan).to_dict() for lan in LAN_NAMES},
                         delay_lines=delay_lines)
