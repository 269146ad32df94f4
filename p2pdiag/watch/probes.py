"""The live probes of `p2pdiag watch`: one relay, one peer, one WebRTC upgrade, each an `Observation`.

Every probe opens its own connections and closes them before it returns, so a connection the
swarm already held never makes a probe pass: `net.dial` (the swarm's `dial_addr`) always opens a
new connection, even when one to the peer is alive, and each probe talks only over the
connection it opened (streams are opened on a given connection, never "to the peer").

A network or peer failure is an Observation with `ok` False and its `failed_phase`,
`error_kind` and one-line `error`; p2pdiag's own bugs raise (`net.classify` re-raises them). A
probe never runs past `target.timeout_s`: its body stops `close_margin()` before, and the
connections it opened are closed within that margin; a probe that ran out says so
(`timed_out`, with the phase it was in).

The relay and peer probes reuse the relay probes of `p2pdiag dial` (`probes/relay.py`,
`probes/circuit.py`): they record into a Recorder of their own (one per probe, dropped after it),
and the Observation is read from those events.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from p2pdiag.diagnosis.limits import read_duration
from p2pdiag.identity import own_key_pair
from p2pdiag.probes import circuit as circ
from p2pdiag.probes import net
from p2pdiag.probes.context import ProbeContext, close_links, own_probe_context, serve_identify  # noqa: F401  (own_probe_context: where tests and benches found it)
from p2pdiag.probes.relay import connect_relay, hop_connect, identify, reserve
from p2pdiag.probes.relaycheck import skip_auto_identify
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import RelayAddr
from p2pdiag.trace.events import (
    CircuitSecured,
    CircuitUpgradeFailed,
    ErrorKind,
    Event,
    HopFailed,
    HopStatusReceived,
    IdentifyCompleted,
    IdentifyFailed,
    Path,
    PingFailed,
    RelayConnected,
    RelayDialFailed,
    ReservationFailed,
    Subject,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.watch.model import (
    AddrDial,
    Observation,
    PeerFacts,
    PeerTarget,
    Phase,
    RelayFacts,
    RelayTarget,
    Target,
    UpgradeFacts,
    UpgradeTarget,
    protocol_names,
)
from p2pdiag.wire.circuit import HOP_PROTOCOL
from p2pdiag.wire.identify import IDENTIFY_PROTOCOL

DIALABLE = frozenset({"tcp", "ws"})  # the transports net.make_host's host dials
MAX_LEARNED_ADDRS = 16  # a peer's identify may announce any number of addresses: at most this many are dialed
MAX_CHILD_OUTPUT_BYTES = 4 * 1024 * 1024  # `p2pdiag dial --json` prints tens of KiB
P2PDIAG_ERROR = "p2pdiag-error"  # the upgrade probe's child failed as p2pdiag (exit 1 or 2, no verdict)
TIMEOUT = ErrorKind.TIMEOUT.value
HOLD_PING_INTERVAL_S = 0.5  # a held circuit is pinged this often (py-libp2p relays check limits as data passes)
HOLD_SETTLE_S = 1.0  # after a failed ping, how long the circuit stream may take to report its end


@asynccontextmanager
async def probe_context(timeouts: StepTimeouts | None = None, wall_clock: Callable[[], float] = time.time,
                        key_pair: Any = None) -> AsyncIterator[ProbeContext]:
    """Make the watch run's one host and run it (listening nowhere) for the block. KEY_PAIR is
    p2pdiag's own (`identity.KeyPair`); the py-libp2p host (the reservation holders', GossipSub's)
    gets the same key, so the run has one identity."""
    from p2pdiag.probes.noise import Noise

    key_pair = key_pair or own_key_pair()
    host = net.make_host(net.ed25519_key_pair(key_pair.seed))
    async with net.running(host), trio.open_nursery() as nursery:
        await net.own_connections_only(host)  # no dials, prunes or trims of py-libp2p's own
        host.set_stream_handler(IDENTIFY_PROTOCOL, functools.partial(serve_identify, host))
        ctx = ProbeContext(host, timeouts or StepTimeouts(), wall_clock, nursery=nursery, noise=Noise(key_pair))
        try:
            yield ctx
        finally:
            await close_links(ctx)
            nursery.cancel_scope.cancel()  # the readers of connections a probe left open (none should be)


def close_margin(timeout_s: float) -> float:
    """How long before its timeout a probe stops, to close what it opened in time."""
    return min(1.0, 0.1 * timeout_s)


def transport_of(addr: str) -> str:
    """The transport of a multiaddr, as AddrDial names it: tcp, ws, wss, p2p-circuit, quic-v1, webrtc …"""
    names = set(protocol_names(addr))
    for name in ("p2p-circuit", "webtransport", "webrtc-direct", "webrtc", "quic-v1", "quic", "wss"):
        if name in names:
            return name
    if "ws" in names:
        return "wss" if "tls" in names else "ws"
    for name in ("tcp", "udp"):
        if name in names:
            return name
    return "other"


def with_peer_id(addr: str, peer_id: str) -> str | None:
    """ADDR ending in /p2p/PEER_ID (added when missing); None when it names another peer."""
    if "/p2p/" in addr.split("/p2p-circuit")[-1]:
        return addr if addr.endswith(f"/p2p/{peer_id}") else None
    return f"{addr.rstrip('/')}/p2p/{peer_id}"


# --- the frame every probe runs in -------------------------------------------------------------


class _Probe:
    """One probe's recorder, clock and progress (the phase it is in, the phases it finished)."""

    def __init__(self, ctx: ProbeContext, target: Target) -> None:
        self.ctx = ctx
        self.target = target
        self.rec = Recorder(trio.current_time)
        self.started_unix_s = ctx.wall_clock()
        self.began = trio.current_time()
        self.phase: str | None = None
        self.phases: list[Phase] = []

    def at(self, phase: str) -> None:
        self.phase = phase

    def took(self, phase: str, seconds: float) -> None:
        self.phases.append(Phase(phase, seconds))

    def last(self, *classes: type[Event], **match: Any) -> Any:
        """The latest recorded event of these classes whose fields equal MATCH."""
        for e in reversed(self.rec.events):
            if isinstance(e, classes) and all(getattr(e, k, None) == v for k, v in match.items()):
                return e
        return None

    def observation(self, ok: bool, **fields: Any) -> Observation:
        return Observation(module=self.target.module, target=self.target.name, ok=ok,
                           started_unix_s=self.started_unix_s, duration_s=trio.current_time() - self.began,
                           phases=tuple(self.phases), **fields)

    def timed_out(self, **facts: Any) -> Observation:
        return self.observation(False, failed_phase=self.phase, error_kind=TIMEOUT, timed_out=True,
                                error=f"the probe's {self.target.timeout_s:g} s ran out during {self.phase}", **facts)

    async def close(self, *objs: Any) -> None:
        """Close what the probe opened, even when its time ran out, within the close margin."""
        with trio.CancelScope(shield=True), trio.move_on_after(close_margin(self.target.timeout_s)):
            for obj in objs:
                if obj is not None:
                    await net.close_quietly(obj)


async def _bounded(p: _Probe, body: Callable[[], Awaitable[Observation]],
                   on_timeout: Callable[[], Observation]) -> Observation:
    with trio.move_on_after(p.target.timeout_s - close_margin(p.target.timeout_s)):
        return await body()
    return on_timeout()


def _kind(e: Any) -> str:
    return e.error_kind.value if isinstance(e.error_kind, ErrorKind) else str(e.error_kind)


# --- RESERVE, shared with the reservation holder ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Reservation:
    """One RESERVE's answer, as watch keeps it."""

    ok: bool
    status: str  # the Status name ("OK", "RESERVATION_REFUSED" …), or "NO_ANSWER"
    expiry_unix_s: float | None = None
    limit_duration_s: float | None = None  # in seconds, the unit read as diagnosis/limits.read_duration reads it
    limit_data_bytes: int | None = None
    duration_s: float | None = None
    error_kind: str | None = None  # an ErrorKind value when no answer came, else the Status name
    error: str | None = None


async def reserve_once(conn: Any, relay: RelayAddr, rec: Recorder, timeouts: StepTimeouts, agent: str | None,
                       *, refresh: bool = False) -> Reservation:
    accepted = await reserve(conn, relay, rec, timeouts, refresh=refresh)
    if accepted is not None:
        return Reservation(True, "OK",
                           float(accepted.expire_unix_s) if accepted.expire_unix_s is not None else None,
                           read_duration(accepted.announced_duration_s, agent).effective_s,
                           accepted.announced_data_bytes or None, accepted.duration_s)
    failed = next(e for e in reversed(rec.events) if isinstance(e, ReservationFailed) and e.relay == relay.addr)
    kind = failed.error_kind.value if failed.error_kind is not None else failed.status_name
    return Reservation(False, failed.status_name, duration_s=failed.duration_s, error_kind=kind,
                       error=f"RESERVE: {failed.error}")


# --- relay ---------------------------------------------------------------------------------------


async def probe_relay(ctx: ProbeContext, target: RelayTarget) -> Observation:
    """Connect to the relay (its own connection), identify it, RESERVE once, close.

    ok: reachable, HOP offered in its identify, and the reservation accepted. Phases: relay-dial,
    relay-identify, reserve."""
    p = _Probe(ctx, target)
    relay = target.relay
    facts: dict[str, Any] = {}
    skip_auto_identify(ctx.host, relay.peer_id)  # the probe identifies the relay itself, on its own connection

    async def body() -> Observation:
        p.at("relay-dial")
        conn = await connect_relay(ctx.host, relay, p.rec, ctx.timeouts, dial=ctx.dial)
        try:
            if conn is None:
                failed = p.last(RelayDialFailed, relay=relay.addr)
                return p.observation(False, failed_phase="relay-dial", error_kind=_kind(failed), error=failed.error,
                                     relay=RelayFacts())
            p.took("relay-dial", p.last(RelayConnected, relay=relay.addr).duration_s)
            problem: tuple[str, str, str] | None = None
            p.at("relay-identify")
            ident = await identify(conn, Subject.RELAY, relay.peer_id, "relay", p.rec, ctx.timeouts, relay=relay.addr)
            if ident is None:
                failed = p.last(IdentifyFailed, connection_id="relay")
                problem = ("relay-identify", _kind(failed), f"identify: {failed.error}")
            else:
                p.took("relay-identify", ident.duration_s)
                facts.update(agent=ident.agent_version, protocols=ident.protocols, listen_addrs=ident.listen_addrs,
                             hop_offered=HOP_PROTOCOL in ident.protocols)
                if not facts["hop_offered"]:
                    problem = ("relay-identify", ErrorKind.PROTOCOL_UNSUPPORTED.value,
                               f"the relay's identify does not list {HOP_PROTOCOL}")
            p.at("reserve")
            got = await reserve_once(conn, relay, p.rec, ctx.timeouts, facts.get("agent"))
            facts.update(reservation_status=got.status, reservation_expiry_unix_s=got.expiry_unix_s,
                         limit_duration_s=got.limit_duration_s, limit_data_bytes=got.limit_data_bytes)
            if got.ok:
                p.took("reserve", got.duration_s or 0.0)
            elif problem is None:
                problem = ("reserve", got.error_kind or "", got.error or "")
            if problem is None:
                return p.observation(True, relay=RelayFacts(**facts))
            return p.observation(False, failed_phase=problem[0], error_kind=problem[1], error=problem[2],
                                 relay=RelayFacts(**facts))
        finally:
            await p.close(conn)

    return await _bounded(p, body, lambda: p.timed_out(relay=RelayFacts(**facts)))


# --- peer ----------------------------------------------------------------------------------------


@dataclass
class _Path:
    """One dial of a peer, directly or through a relay, as it goes."""

    addr: str
    transport: str
    relay: str | None
    connection_id: str
    phase: str = "dial"
    began: float = 0.0
    ended: float | None = None
    reached: bool = False
    secured: bool = False
    ok: bool = False
    failed_phase: str | None = None
    error_kind: str | None = None
    error: str | None = None
    phases: list[Phase] = field(default_factory=list)
    held_s: float | None = None
    cut: str | None = None
    cut_after_s: float | None = None

    def fail(self, phase: str, kind: str, error: str) -> None:
        self.failed_phase, self.error_kind, self.error = phase, kind, error
        self.ended = trio.current_time()

    def done(self) -> AddrDial:
        failed = self.failed_phase
        kind, error = self.error_kind, self.error
        if not self.ok and failed is None:  # still going when the probe's time ran out
            failed, kind = self.phase, TIMEOUT
            error = f"unfinished when the probe's time ran out (during {self.phase})"
        end = self.ended if self.ended is not None else trio.current_time()
        return AddrDial(addr=self.addr, transport=self.transport, relay=self.relay, ok=self.ok, reached=self.reached,
                        secured=self.secured, failed_phase=failed, error_kind=kind, error=error,
                        duration_s=end - self.began, phases=tuple(self.phases), held_s=self.held_s, cut=self.cut,
                        cut_after_s=self.cut_after_s)


class _PeerProbe:
    def __init__(self, ctx: ProbeContext, target: PeerTarget) -> None:
        self.ctx = ctx
        self.target = target
        self.p = _Probe(ctx, target)
        self.paths: list[_Path] = []
        self.untried: list[AddrDial] = []
        self.dialed: set[str] = set()
        self.last_identify: IdentifyCompleted | None = None
        self._identifying = False
        self._identify_ended = trio.Event()

    def _path(self, addr: str, transport: str, relay: str | None) -> _Path:
        path = _Path(addr, transport, relay, f"path-{len(self.paths) + 1}", began=trio.current_time())
        self.paths.append(path)
        self.dialed.add(addr)
        return path

    def _plan_direct(self, addrs: list[str], nursery: trio.Nursery) -> None:
        for raw in addrs:
            addr = with_peer_id(raw, self.target.peer_id)
            if addr is None or addr in self.dialed:
                continue
            transport = transport_of(addr)
            if transport == "p2p-circuit":
                continue  # dialed through target.relays; reported as a listen address of transport p2p-circuit
            if transport not in DIALABLE:
                self.dialed.add(addr)
                self.untried.append(AddrDial(addr=addr, transport=transport, relay=None, ok=False, reached=False,
                                             secured=False, tried=False))
                continue
            self.p.at("dial")
            nursery.start_soon(self._direct, self._path(addr, transport, None))

    async def run(self) -> Observation:
        target = self.target
        async with trio.open_nursery() as nursery:
            self._plan_direct(list(target.addrs), nursery)
            for relay in target.relays:
                addr = f"{relay.addr}/p2p-circuit/p2p/{target.peer_id}"
                nursery.start_soon(self._relayed, self._path(addr, "p2p-circuit", relay.addr), relay)
        if target.learn_addrs:
            announced = [a for path in self.paths if path.ok for a in self._announced(path)]
            learned = list(dict.fromkeys(announced))[:MAX_LEARNED_ADDRS]
            async with trio.open_nursery() as nursery:
                self._plan_direct(learned, nursery)
        return self.observation()

    def _announced(self, path: _Path) -> tuple[str, ...]:
        got = self.p.last(IdentifyCompleted, connection_id=path.connection_id)
        return got.listen_addrs if got is not None else ()

    def observation(self, timed_out: bool = False) -> Observation:
        dials = tuple(path.done() for path in self.paths) + tuple(self.untried)
        ident = self.last_identify
        facts = PeerFacts(agent=ident.agent_version if ident else None, protocols=ident.protocols if ident else (),
                          listen_addrs=ident.listen_addrs if ident else (), identified=ident is not None, dials=dials)
        good = next((d for d in dials if d.ok and any(ph.name == "identify" for ph in d.phases)), None)
        good = good or next((d for d in dials if d.ok), None)
        if good is not None:
            self.p.phases = list(good.phases)
            return self.p.observation(True, peer=facts, timed_out=timed_out)
        if timed_out:
            self.p.phase = next((path.phase for path in self.paths if path.ended is None), self.p.phase)
            return self.p.timed_out(peer=facts)
        tried = [d for d in dials if d.tried]
        if not tried:
            return self.p.observation(False, failed_phase="dial", error_kind=ErrorKind.OTHER.value, peer=facts,
                                      error="no address of a transport p2pdiag dials, and no relay to dial through")
        first = tried[0]
        return self.p.observation(False, failed_phase=first.failed_phase, error_kind=first.error_kind, peer=facts,
                                  error=f"{first.addr}: {first.error}")

    def _identified(self, path: _Path, ident: IdentifyCompleted | None) -> None:
        if ident is None:
            failed = self.p.last(IdentifyFailed, connection_id=path.connection_id)
            return path.fail("identify", _kind(failed), f"identify: {failed.error}")
        path.phases.append(Phase("identify", ident.duration_s))
        path.ok = True
        path.ended = trio.current_time()
        self.last_identify = ident

    async def _identify_once(self, path: _Path, conn: Any) -> None:
        """Identify the peer on the first path secured; a path secured while that runs waits for it,
        and is ok once the peer was identified (on whichever path): identify answers the same on
        each connection, and is a third of a path's CPU. When it fails there, the next path tries."""
        while self.last_identify is None:
            if not self._identifying:
                self._identifying = True
                try:
                    self._identified(path, await identify(conn, Subject.PEER, self.target.peer_id,
                                                          path.connection_id, self.p.rec, self.ctx.timeouts))
                finally:
                    self._identifying = False
                    self._identify_ended.set()
                    self._identify_ended = trio.Event()
                return
            await self._identify_ended.wait()
        path.ok = True
        path.ended = trio.current_time()

    async def _direct(self, path: _Path) -> None:
        ctx, conn = self.ctx, None
        mark = trio.current_time()

        def reached() -> None:
            nonlocal mark
            now = trio.current_time()
            path.reached, path.phase = True, "secure"
            path.phases.append(Phase("dial", now - mark))
            mark = now

        try:
            try:
                with trio.fail_after(ctx.timeouts.relay_connect):
                    conn = await ctx.dial(path.addr, self.target.peer_id, reached)
            except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
                kind, message = net.classify(exc)
                return path.fail(path.phase, kind.value, message)
            path.secured, path.phase = True, "identify"
            path.phases.append(Phase("secure", trio.current_time() - mark))
            await self._identify_once(path, conn)
        finally:
            await self.p.close(conn)

    async def _relayed(self, path: _Path, relay: RelayAddr) -> None:
        ctx, p, peer_id = self.ctx, self.p, self.target.peer_id
        relay_conn = conn = stream = None
        kept = False  # relay_conn is the context's shared link: not this path's to close
        try:
            # A held circuit gets a connection of its own: a relay that ends it by closing the whole
            # connection must not end the other paths' circuits with it.
            shared = ctx.shared_link(relay) if self.target.hold_s <= 0 else None
            while True:
                if shared is not None:
                    relay_conn = shared
                    kept = True
                else:
                    path.phase = "relay-dial"
                    relay_conn = await connect_relay(ctx.host, relay, p.rec, ctx.timeouts, dial=ctx.dial)
                    if relay_conn is None:
                        failed = p.last(RelayDialFailed, relay=relay.addr)
                        return path.fail("relay-dial", _kind(failed), f"the relay: {failed.error}")
                    path.phases.append(Phase("relay-dial", p.last(RelayConnected, relay=relay.addr).duration_s))
                    kept = self.target.hold_s <= 0 and ctx.keep_link(relay, relay_conn)
                path.phase = "hop"
                got = await hop_connect(relay_conn, relay, peer_id, p.rec, ctx.timeouts)
                if got is not None:
                    break
                answer = p.last(HopStatusReceived, HopFailed, relay=relay.addr)
                if isinstance(answer, HopStatusReceived):
                    return path.fail("hop", answer.status_name,
                                     f"the relay answered HOP CONNECT with {answer.status_name}")
                if shared is None:
                    return path.fail("hop", _kind(answer), f"HOP CONNECT: {answer.error}")
                # the shared link broke (the relay restarted, or closed it idle): again, on a new connection
                ctx.drop_link(relay, shared)
                shared, kept, relay_conn = None, False, None
            path.reached = True
            path.phases.append(Phase("hop", got[1].duration_s))
            path.phase = "secure"
            stream = circ.CircuitStream(got[0], p.rec)
            conn = await circ.secure(ctx.host, stream, inbound=False, relay=relay.addr, relay_peer_id=relay.peer_id,
                                     remote_peer_id=peer_id, connection_id=path.connection_id, rec=p.rec,
                                     timeouts=ctx.timeouts, upgrade=ctx.upgrader)
            if conn is None:
                failed = p.last(CircuitUpgradeFailed, connection_id=path.connection_id)
                return path.fail("secure", _kind(failed), f"over the circuit: {failed.error}")
            path.secured = True
            path.phases.append(Phase("secure", p.last(CircuitSecured, connection_id=path.connection_id).duration_s))
            path.phase = "identify"
            await self._identify_once(path, conn)
            if path.ok and self.target.hold_s > 0:
                path.phase = "hold"
                await self._hold(path, conn, stream, got[1], relay)
        finally:
            if stream is not None:
                stream.mark_closing_by_us()
            await p.close(conn, stream, None if kept else relay_conn)


    async def _hold(self, path: _Path, conn: Any, stream: circ.CircuitStream, status: HopStatusReceived,
                    relay: RelayAddr) -> None:
        """Hold the secured circuit `hold_s`, pinging over it, to see whether the relay cuts it: a relay
        that cuts circuits at its limits ends every user's relayed connection there (js-libp2p #2413)."""
        pinger = circ.Pinger(conn, path.connection_id, Path.RELAYED, self.p.rec, self.ctx.timeouts, relay=relay.addr)
        began = trio.current_time()
        with trio.move_on_after(self.target.hold_s):
            while not stream.ended.is_set():
                if isinstance(await pinger.ping(), PingFailed):
                    with trio.move_on_after(HOLD_SETTLE_S):  # a reset reaches the stream a moment after
                        await stream.ended.wait()
                    break
                with trio.move_on_after(HOLD_PING_INTERVAL_S):
                    await stream.ended.wait()
        path.held_s = trio.current_time() - began
        if stream.ended.is_set() and stream.ended_from_below:
            path.cut_after_s = stream.age_s()
            path.cut = cut_cause(path.cut_after_s, stream.bytes_sent, stream.bytes_received,
                                 status.announced_duration_s, status.announced_data_bytes)


def cut_cause(age_s: float, sent: int, received: int, duration: int | None, data: int | None) -> str:
    """Which announced limit a cut circuit reached: "duration" (the age is the limit, read in seconds or
    in js-libp2p's milliseconds), "data" (either direction, or both together, reached it), else
    "unexplained"."""
    for limit_s in (duration, duration / 1000 if duration else None):
        if limit_s and limit_s * 0.9 - 0.5 <= age_s <= limit_s * 1.2 + 1.0:
            return "duration"
    if data and max(sent, received, sent + received) >= data * 0.9:
        return "data"
    return "unexplained"


async def probe_peer(ctx: ProbeContext, target: PeerTarget) -> Observation:
    """Dial each direct address (the config's, then those the peer's identify announced when
    `learn_addrs`) and through each relay, each on its own connection, all at once; identify once,
    on the first path secured (`_PeerProbe._identify_once`).

    ok: the peer was identified, and a path is ok when it was secured (Noise and yamux) and the
    peer identified; each address's own result is in `peer.dials` (the tracker judges each).
    Addresses of transports p2pdiag cannot dial are listed with tried=False. Phases: the identified
    path's (dial, secure, identify; or relay-dial, hop, secure, identify)."""
    probe = _PeerProbe(ctx, target)
    skip_auto_identify(ctx.host, target.peer_id, *(r.peer_id for r in target.relays))
    return await _bounded(probe.p, probe.run, lambda: probe.observation(timed_out=True))


# --- the WebRTC upgrade: `p2pdiag dial` as a child -------------------------------------------

# `dial --json` step keys (their suffix) -> watch's phase names
_STEP_PHASES = (("relay.connect", "relay-dial"), ("relay.identify", "relay-identify"), ("hop.connect", "hop"),
                ("circuit.secure", "secure"), (".identify", "identify"), (".signaling", "signaling"),
                (".ice", "ice"), (".dtls", "dtls"), (".channel", "first-channel"))


def upgrade_phases(steps: list[dict[str, Any]]) -> tuple[Phase, ...]:
    """Phases from a dial verdict's steps: a step's own duration where it has one, else the time
    since the step before it (ICE connected after the remote candidates came; the first data
    channel after DTLS). The last step of each phase that went ok counts (a later relay's)."""
    found: dict[str, float] = {}
    previous_t: float | None = None
    for step in steps:
        key, t_s = str(step.get("key", "")), step.get("t_s")
        name = next((n for suffix, n in _STEP_PHASES if key == suffix or key.endswith(suffix)), None)
        if name is not None and step.get("status") == "ok":
            seconds = step.get("duration_s")
            if not isinstance(seconds, (int, float)) and isinstance(t_s, (int, float)) and previous_t is not None:
                seconds = t_s - previous_t
            if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0:
                found[name] = float(seconds)
        if isinstance(t_s, (int, float)):
            previous_t = t_s
    return tuple(Phase(n, s) for n, s in found.items())


def upgrade_observation(p: _Probe, exit_code: int, out: bytes) -> Observation:
    """The child's exit code and stdout (its --json verdict) as the upgrade probe's Observation."""
    try:
        doc = json.loads(out.decode("utf-8", "replace"))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        outcome, steps, findings = str(doc["outcome"]), list(doc.get("steps") or []), list(doc.get("findings") or [])
    except (ValueError, KeyError, TypeError) as exc:
        return p.observation(False, failed_phase="upgrade", error_kind=P2PDIAG_ERROR,
                             error=f"p2pdiag dial exited {exit_code} without a verdict ({exc}); a p2pdiag problem, "
                                   "not the peer's")
    codes = tuple(str(f.get("code")) for f in findings if isinstance(f, dict))
    certainty = findings[0].get("confidence") if findings and isinstance(findings[0], dict) else None
    facts = UpgradeFacts(outcome=outcome, causes=codes, certainty=certainty, exit_code=exit_code)
    p.phases = list(upgrade_phases([s for s in steps if isinstance(s, dict)]))
    headline = str(doc.get("headline") or outcome)
    if exit_code in (1, 2):
        return p.observation(False, failed_phase="upgrade", error_kind=P2PDIAG_ERROR, upgrade=facts,
                             error=f"p2pdiag dial exited {exit_code} (a p2pdiag problem, not the peer's): {headline}")
    if outcome == "upgraded":
        return p.observation(True, upgrade=facts)
    if outcome == "interrupted":  # the child's --timeout (the probe's budget) ran out, or it was signalled
        return p.observation(False, failed_phase="upgrade", error_kind=TIMEOUT, timed_out=True, upgrade=facts,
                             error=headline)
    failed = next((s for s in steps if isinstance(s, dict) and s.get("status") == "failed"), None)
    phase = "upgrade"
    if failed is not None:
        key = str(failed.get("key", ""))
        phase = next((n for suffix, n in _STEP_PHASES if key.endswith(suffix)), key or "upgrade")
    return p.observation(False, failed_phase=phase, error_kind=codes[0] if codes else outcome, upgrade=facts,
                         error=headline)


async def probe_upgrade(ctx: ProbeContext, target: UpgradeTarget) -> Observation:
    """`p2pdiag dial PEER --relay R… --json` as a child process, its verdict as UpgradeFacts.

    The child gets `--timeout` a little below the target's; it is killed if it overruns, and only
    MAX_CHILD_OUTPUT_BYTES of its stdout are read. ok: the outcome is "upgraded". A child that
    exits 1 or 2 (or prints no verdict) is p2pdiag's problem: error_kind "p2pdiag-error"."""
    p = _Probe(ctx, target)
    budget = target.timeout_s - close_margin(target.timeout_s)
    child_timeout = max(budget - min(2.0, 0.2 * budget), 0.5)
    argv = [*ctx.p2pdiag_argv, "dial", target.peer_id, "--json", "--timeout", f"{child_timeout:.3f}"]
    for relay in target.relays:
        argv += ["--relay", relay.addr]
    p.at("upgrade")
    proc: Any = None

    async def body() -> Observation:
        nonlocal proc
        try:
            proc = await trio.lowlevel.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                    stderr=subprocess.DEVNULL)
        except OSError as exc:
            return p.observation(False, failed_phase="upgrade", error_kind=P2PDIAG_ERROR,
                                 error=f"could not start p2pdiag dial: {exc}")
        out = bytearray()
        try:
            while chunk := await proc.stdout.receive_some(65536):
                out += chunk
                if len(out) > MAX_CHILD_OUTPUT_BYTES:
                    proc.kill()
                    return p.observation(False, failed_phase="upgrade", error_kind=P2PDIAG_ERROR,
                                         error=f"p2pdiag dial printed more than {MAX_CHILD_OUTPUT_BYTES} bytes")
            code = await proc.wait()
        finally:
            await _reap(proc, close_margin(target.timeout_s))
        return upgrade_observation(p, code, bytes(out))

    return await _bounded(p, body, p.timed_out)


async def _reap(proc: Any, within_s: float) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(within_s):
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await proc.stdout.aclose()
