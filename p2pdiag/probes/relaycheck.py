"""`p2pdiag relay-check`: every relay checked at once, each one phase after another, all recorded.

For each relay, in its own task of one trio nursery:

1. identity A connects, identifies the relay, reserves, and reserves again (a refresh);
2. the loop: identity B (no reservation) dials A through the relay, HOP CONNECT -> STOP CONNECT,
   then pings over the bare circuit and pushes a payload kept well inside the data limit (raw
   bytes, no Noise or yamux on top: the relay is a byte pipe once STOP is answered);
3. --measure-limits: B echoes data over a fresh circuit until the relay cuts it, then holds
   another until the duration limit cuts it (each bounded, and skipped when too large to wait for);
4. A closes its relay connection and B asks for A again: the relay should answer NO_RESERVATION;
5. --reservations N: N more identities reserve one after another until the relay refuses.

Only A reserves by default: js-libp2p 3.x and py-libp2p 0.8.1 relays keep counting a reservation
against their slots after its holder disconnects, until its TTL (2 h, 1 h), so every reservation
relay-check takes costs the relay a slot for that long.

Phases run one after another within a relay, each marked by `relaycheck.phase_started`, so the
reused relay events (which name the relay but not the identity) are attributed by order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from p2pdiag.diagnosis.limits import read_duration
from p2pdiag.probes import circuit as circ
from p2pdiag.probes import net
from p2pdiag.probes.relay import connect_relay, hop_connect, identify, reserve
from p2pdiag.probes.timeouts import StepTimeouts
from p2pdiag.targets import RelayAddr
from p2pdiag.trace.events import (
    CircuitUpgradeFailed,
    ErrorKind,
    Event,
    HopFailed,
    HopStatusReceived,
    IdentifyCompleted,
    Path,
    PingCompleted,
    PingFailed,
    StepTimedOut,
    StopConnectReceived,
    Subject,
)
from p2pdiag.trace.events.relaycheck import (
    CheckPhase,
    EntryRejected,
    LimitKind,
    LimitProbeEnded,
    LimitProbeStarted,
    PhaseSkipped,
    PhaseStarted,
    ProbeCrashed,
    RelayCheckFinished,
    RelayConnectionClosed,
    RelayListed,
    TransferCompleted,
    TransferFailed,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.wire import circuit, pb
from p2pdiag.wire.identify import PING_PAYLOAD_BYTES, PING_PROTOCOL

# The loop, raw on the circuit (no Noise, yamux or multistream-select above the relay's stream:
# securing the circuit in p2pdiag's one process cost most of a relay's check, and the relay cannot
# tell). B sends b"P" + 32 random bytes, A answers b"E" + the same bytes (another tag, so a relay
# that sends B's bytes back instead of relaying them fails the byte-for-byte check); B sends
# b"S" + u64 length + payload, A answers b"C" + u64 count + SHA-256 of what it read (so a byte
# dropped or changed on the way is caught, as Noise's tags did).
LOOP_PING, LOOP_ECHO, LOOP_SINK, LOOP_COUNT = b"P", b"E", b"S", b"C"
SINK_DIGEST_BYTES = 32
ECHO_PROTOCOL = "/p2pdiag/relay-check/echo/1.0.0"  # every byte sent back

LOOP_PINGS = 2  # relayed RTT samples, on the loop circuit
THROUGHPUT_MAX_BYTES = 32 * 1024  # the loop's payload when the relay announces no data limit
THROUGHPUT_BUDGET_SHARE = 0.5  # ...and at most this share of the data budget left on the circuit
THROUGHPUT_MIN_BYTES = 1024  # below this a throughput figure means nothing: skip it
MEASURE_DATA_MAX_BYTES = 8 * 1024 * 1024  # --measure-limits never echoes through a larger data limit
MEASURE_DATA_OVERSHOOT = 1.25  # give up when this much of the limit went by without a cut
MEASURE_DURATION_GRACE_S = 5.0  # wait this long past the duration limit (or 10% of it) for the cut
MEASURE_PING_INTERVAL_S = 0.5  # py-libp2p relays check the deadline only when data arrives
CUT_SETTLE_S = 2.0  # after an echo fails, how long the circuit stream may take to report its end
DROP_SETTLE_S = 0.3  # after closing A's connection, before asking the relay for A
# py-libp2p 0.8.1 relays tear a circuit down up to ~0.6 s after it ends (read retries), and that
# teardown resets whichever circuit between the same two peers is open by then: wait it out.
CIRCUIT_SETTLE_S = 1.5
DROP_RETRY_S = 2.0  # a relay that has not noticed the close yet is asked once more after this
SINK_MAX_BYTES = 64 * 1024 * 1024
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CheckTarget:
    label: str  # "r1", "r2"...
    relay: RelayAddr
    source: str  # "argument" or the --from-file path
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    source: str
    line: int
    text: str
    error: str
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class RelayCheckOptions:
    targets: tuple[CheckTarget, ...]
    rejected: tuple[Rejected, ...] = ()
    timeouts: StepTimeouts = field(default_factory=StepTimeouts)
    relay_budget_s: float = 28.0  # each relay's check stops by then, so the verdict still covers it
    measure_limits: bool = False
    measure_max_s: float = 300.0  # longest duration limit --measure-limits waits for
    reservations: int = 0
    wall_clock: Callable[[], float] = time.time


BUDGET_MARGIN_S = (1.0, 5.0)  # each relay's check stops this much (10% of the time, within) before the run's end


def relay_budget(run_s: float) -> float:
    """Each relay's share of a run that has RUN_S seconds: it stops early enough for the verdict to
    say which check it was in (`relay-check-incomplete`), not just that the run ran out."""
    margin = min(max(0.1 * run_s, BUDGET_MARGIN_S[0]), BUDGET_MARGIN_S[1])
    return max(run_s - margin, 0.5 * run_s)


async def relay_check(opts: RelayCheckOptions, rec: Recorder) -> None:
    # --timeout counts from p2pdiag's start, and the imports before this took some of it: the
    # relays' share is of what the run has left now, never more than the options said.
    left = trio.current_effective_deadline() - trio.current_time()
    if left < opts.relay_budget_s:
        opts = dataclasses.replace(opts, relay_budget_s=relay_budget(left))
    for t in opts.targets:
        rec.record(RelayListed, relay=t.relay.addr, relay_peer_id=t.relay.peer_id, transport=t.relay.transport,
                   label=t.label, source=t.source, line=t.line)
    for r in opts.rejected:
        rec.record(EntryRejected, source=r.source, line=r.line, text=r.text, error=r.error,
                   duplicate_of=r.duplicate_of)
    async with trio.open_nursery() as nursery:
        for t in opts.targets:
            nursery.start_soon(_check_one, t, opts, rec)


async def _check_one(target: CheckTarget, opts: RelayCheckOptions, rec: Recorder,
                     check: Callable[..., Any] | None = None) -> None:
    """One relay's check, within its share of --timeout; `check` stands in for _RelayCheck in tests."""
    began = rec.now()
    out_of_time = False
    try:
        with trio.move_on_after(opts.relay_budget_s) as scope:
            await (check or _RelayCheck)(target, opts, rec).run()
        out_of_time = scope.cancelled_caught
    except Exception as exc:  # noqa: BLE001  (recorded as ProbeCrashed: a bug on one relay must not end the others)
        rec.record(ProbeCrashed, relay=target.relay.addr, error_type=type(exc).__name__, error=str(exc)[:500])
    rec.record(RelayCheckFinished, relay=target.relay.addr, duration_s=rec.now() - began, out_of_time=out_of_time)


def duration_wait(effective_s: float | None, measure_max_s: float, left_s: float) -> tuple[float | None, str]:
    """How long to hold a circuit for the relay's duration limit to cut it, or None and why not.

    `left_s` is what remains of the relay's budget once a circuit is open.
    """
    if not effective_s:
        return None, "the relay announced no duration limit"
    if effective_s > measure_max_s:
        return None, f"the duration limit ({effective_s:g} s) is longer than --measure-max {measure_max_s:g} s"
    wait = effective_s + max(MEASURE_DURATION_GRACE_S, 0.1 * effective_s)
    if wait > left_s:
        left = max(left_s, 0.0)
        return None, (f"waiting for the duration limit needs about {wait:.0f} s, "
                      f"and only {left:.0f} s of --timeout were left")
    return wait, ""


@dataclass
class _Identity:
    host: Any
    peer_id: str


def skip_auto_identify(host: Any, *peer_ids: str) -> bool:
    """Spare py-libp2p's automatic identify of these peers on every new connection: relay-check
    identifies the relay itself, and its identities have nothing to learn about each other.

    py-libp2p 0.8.1 has no public switch for it; its BasicHost skips identify of a peer whose
    peerstore entry already lists a protocol such as ping (`_has_cached_protocols`), and the
    peerstore is public. Only CPU rides on it (each identify is a stream and a round trip), so
    when the peerstore does not take protocols this way the check goes on, identify and all:
    returns False then."""
    try:
        store = host.get_peerstore()
        for peer_id in peer_ids:
            store.add_protocols(net.peer_id_from_string(peer_id), [PING_PROTOCOL])
    except (AttributeError, TypeError, NotImplementedError):
        return False
    return True


@asynccontextmanager
async def _identity(setup: Callable[[Any], None] | None = None) -> AsyncIterator[_Identity]:
    host = net.make_host()
    if setup is not None:
        setup(host)
    async with net.running(host):
        yield _Identity(host, host.get_id().to_base58())


def _last(rec: Recorder, relay: str, *classes: type[Event]) -> Event | None:
    """The latest of these events about this relay (the probe's own, just recorded)."""
    for e in reversed(rec.events):
        if isinstance(e, classes) and getattr(e, "relay", None) == relay:
            return e
    return None


class _RelayCheck:
    def __init__(self, target: CheckTarget, opts: RelayCheckOptions, rec: Recorder) -> None:
        self.target = target
        self.relay = target.relay
        self.opts = opts
        self.rec = rec
        self.t = opts.timeouts
        self.inbound_name = "loop"  # names the next circuit A answers: "r1.loop-in"
        self.circuits = 0
        self.agent: str | None = None
        self.a_host: Any = None

    # --- plumbing --------------------------------------------------------------------------

    def cid(self, name: str) -> str:
        return f"{self.target.label}.{name}"

    def phase(self, phase: CheckPhase, who: _Identity, index: int = 0) -> None:
        self.rec.record(PhaseStarted, relay=self.relay.addr, phase=phase, peer_id=who.peer_id,
                        wall_unix_s=self.opts.wall_clock(), index=index)

    def skip(self, phases: list[CheckPhase], reason: str) -> None:
        for p in phases:
            self.rec.record(PhaseSkipped, relay=self.relay.addr, phase=p, reason=reason)

    def _answering(self, host: Any) -> None:
        """The handlers of A, the identity that reserves and answers circuits."""
        self.a_host = host
        host.set_stream_handler(circuit.STOP_PROTOCOL, self._on_stop)
        host.set_stream_handler(PING_PROTOCOL, circ.echo_pings)
        host.set_stream_handler(ECHO_PROTOCOL, _serve_echo)

    # --- the phases ------------------------------------------------------------------------

    async def run(self) -> None:
        measures = [CheckPhase.MEASURE_DATA, CheckPhase.MEASURE_DURATION] if self.opts.measure_limits else []
        slots = [CheckPhase.SLOT] if self.opts.reservations else []
        async with _identity(self._answering) as a, _identity() as b:
            skip_auto_identify(a.host, self.relay.peer_id, b.peer_id)
            skip_auto_identify(b.host, self.relay.peer_id, a.peer_id)
            self.phase(CheckPhase.CONNECT, a)
            a_conn = await connect_relay(a.host, self.relay, self.rec, self.t)
            if a_conn is None:
                return self.skip([CheckPhase.RESERVE, CheckPhase.REFRESH, CheckPhase.LOOP, *measures,
                                  CheckPhase.DROP, *slots], "the relay could not be reached")
            ident = await identify(a_conn, Subject.RELAY, self.relay.peer_id, self.cid("a"), self.rec, self.t,
                                   relay=self.relay.addr)
            self.agent = ident.agent_version if isinstance(ident, IdentifyCompleted) else None

            self.phase(CheckPhase.RESERVE, a)
            rsvp = await reserve(a_conn, self.relay, self.rec, self.t)
            if rsvp is None:
                return self.skip([CheckPhase.REFRESH, CheckPhase.LOOP, *measures, CheckPhase.DROP, *slots],
                                 "the relay gave no reservation")
            self.phase(CheckPhase.REFRESH, a)
            await reserve(a_conn, self.relay, self.rec, self.t, refresh=True)

            self.phase(CheckPhase.LOOP, b)
            b_conn = await connect_relay(b.host, self.relay, self.rec, self.t)
            if b_conn is None:
                return self.skip([*measures, CheckPhase.DROP, *slots], "a second connection to the relay failed")
            if not await self.loop(a, b, b_conn):
                self.skip(measures, "the loop test did not get through the relay")
            elif measures:
                await self.measure_data(a, b, b_conn, rsvp.announced_data_bytes)
                await self.measure_duration(a, b, b_conn, rsvp.announced_duration_s)
            if self.handles_connect():
                await self.drop(a, a_conn, b, b_conn)
            else:
                self.skip([CheckPhase.DROP], "the relay did not answer HOP CONNECT with a status")
        if slots:
            await self.slots(self.opts.reservations)

    def handles_connect(self) -> bool:
        return isinstance(_last(self.rec, self.relay.addr, HopStatusReceived, HopFailed), HopStatusReceived)

    async def connect_through(self, b_conn: Any, a: _Identity, name: str) -> circ.CircuitStream | None:
        """HOP CONNECT from B to A: the circuit stream, or None."""
        if self.circuits:
            await trio.sleep(CIRCUIT_SETTLE_S)
        self.circuits += 1
        self.inbound_name = name
        got = await hop_connect(b_conn, self.relay, a.peer_id, self.rec, self.t)
        return circ.CircuitStream(got[0], self.rec) if got is not None else None

    async def open_circuit(self, b: _Identity, b_conn: Any, a: _Identity, name: str) -> tuple[Any, Any] | None:
        """HOP CONNECT from B to A and secure it: (swarm connection, circuit stream), or None."""
        stream = await self.connect_through(b_conn, a, name)
        if stream is None:
            return None
        conn = await circ.secure(b.host, stream, inbound=False, relay=self.relay.addr,
                                 relay_peer_id=self.relay.peer_id, remote_peer_id=a.peer_id,
                                 connection_id=self.cid(name), rec=self.rec, timeouts=self.t)
        return (conn, stream) if conn is not None else None

    async def close_circuit(self, conn: Any | None, stream: circ.CircuitStream, cid: str) -> None:
        """Close a circuit from our side (`conn` None: the raw loop, nothing above the stream)."""
        with trio.CancelScope(shield=True):
            if not stream.ended.is_set():
                await circ.close_by_us(conn, stream)
            circ.record_closed(stream, cid, self.rec)

    async def loop(self, a: _Identity, b: _Identity, b_conn: Any) -> bool:
        """Does the relay relay? Returns True when a ping came back through it."""
        stream = await self.connect_through(b_conn, a, "loop")
        if stream is None:
            return False
        cid = self.cid("loop")
        relayed = False
        try:
            for _ in range(LOOP_PINGS):
                if isinstance(await self.ping(stream, cid), PingFailed):
                    self.skip([CheckPhase.THROUGHPUT], "a relayed ping failed on the loop circuit")
                    break
                relayed = True
            else:
                self.phase(CheckPhase.THROUGHPUT, b)
                await self.throughput(stream, cid)
            circ.record_traffic(stream, cid, self.rec)
        finally:
            await self.close_circuit(None, stream, cid)
        return relayed

    def timed_out(self, step: str, seconds: float) -> None:
        self.rec.record(StepTimedOut, step=step, timeout_s=seconds, relay=self.relay.addr)

    async def ping(self, s: circ.CircuitStream, cid: str) -> PingCompleted | PingFailed:
        """One round trip of PING_PAYLOAD_BYTES random bytes, echoed by A, checked byte for byte."""
        try:
            with trio.fail_after(self.t.ping):
                payload = os.urandom(PING_PAYLOAD_BYTES)
                began = trio.current_time()
                await s.write(LOOP_PING + payload)
                echo = await net.read_exactly(s, 1 + PING_PAYLOAD_BYTES)
                rtt = trio.current_time() - began
            if echo != LOOP_ECHO + payload:
                raise pb.MalformedMessage(_echo_mismatch(LOOP_PING + payload, echo))
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, message = net.classify(exc)
            if kind is ErrorKind.TIMEOUT:
                self.timed_out("ping", self.t.ping)
            return self.rec.record(PingFailed, path=Path.RELAYED, connection_id=cid, error_kind=kind, error=message)
        return self.rec.record(PingCompleted, path=Path.RELAYED, connection_id=cid, rtt_s=rtt)

    async def throughput(self, stream: circ.CircuitStream, cid: str) -> None:
        status = _last(self.rec, self.relay.addr, HopStatusReceived)
        limit = status.announced_data_bytes if isinstance(status, HopStatusReceived) else None
        size = THROUGHPUT_MAX_BYTES
        if limit:
            left = limit - stream.bytes_sent - stream.bytes_received
            size = min(size, int(left * THROUGHPUT_BUDGET_SHARE))
        if stream.ended.is_set():
            return self.skip([CheckPhase.THROUGHPUT], "the circuit had already ended")
        if size < THROUGHPUT_MIN_BYTES:
            return self.skip([CheckPhase.THROUGHPUT], f"the data limit ({limit} B) leaves too little to measure")
        began = self.rec.now()
        counted: int | None = None
        matched: bool | None = None
        try:
            with trio.fail_after(self.t.transfer):
                digest = hashlib.sha256()
                await stream.write(LOOP_SINK + struct.pack(">Q", size))
                for off in range(0, size, 16384):
                    chunk = os.urandom(min(16384, size - off))
                    digest.update(chunk)
                    await stream.write(chunk)
                answer = await net.read_exactly(stream, 1 + 8 + SINK_DIGEST_BYTES)
            # Both facts are recorded and relay-check's finding weighs them: only a full-length
            # payload whose digest differs arrived changed; a short one did not all arrive.
            matched = answer[9:] == digest.digest()
            if answer[:1] != LOOP_COUNT:
                raise pb.MalformedMessage(f"the far end answered the payload with {answer[:9]!r}")
            (counted,) = struct.unpack(">Q", answer[1:9])
            if counted != size:
                raise pb.MalformedMessage(f"the far end counted {counted} of {size} bytes")
            if not matched:
                raise pb.MalformedMessage(f"the {size} bytes arrived changed (their SHA-256 differs)")
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, message = net.classify(exc)
            if kind is ErrorKind.TIMEOUT:
                self.timed_out("transfer", self.t.transfer)
            self.rec.record(TransferFailed, relay=self.relay.addr, connection_id=cid, payload_bytes=size,
                            error_kind=kind, error=message, duration_s=self.rec.now() - began,
                            counted_bytes=counted, digest_matched=matched)
            return
        self.rec.record(TransferCompleted, relay=self.relay.addr, connection_id=cid, payload_bytes=size,
                        duration_s=self.rec.now() - began)

    async def open_measured(self, phase: CheckPhase, a: _Identity, b: _Identity,
                            b_conn: Any) -> tuple[Any, circ.CircuitStream, str] | None:
        """A fresh circuit for one measurement, named after what it measures ("r1.data")."""
        self.phase(phase, b)
        name = phase.value.removeprefix("measure-")
        opened = await self.open_circuit(b, b_conn, a, name)
        return (opened[0], opened[1], self.cid(name)) if opened is not None else None

    async def measure_data(self, a: _Identity, b: _Identity, b_conn: Any, limit: int | None) -> None:
        if not limit:
            return self.skip([CheckPhase.MEASURE_DATA], "the relay announced no data limit")
        if limit > MEASURE_DATA_MAX_BYTES:
            return self.skip([CheckPhase.MEASURE_DATA], f"the data limit ({limit} B) is more than the "
                             f"{MEASURE_DATA_MAX_BYTES // MIB} MiB p2pdiag pushes through a relay")
        opened = await self.open_measured(CheckPhase.MEASURE_DATA, a, b, b_conn)
        if opened is None:
            return
        conn, stream, cid = opened
        give_up = int(limit * MEASURE_DATA_OVERSHOOT) + 8192
        self.rec.record(LimitProbeStarted, relay=self.relay.addr, connection_id=cid, limit=LimitKind.DATA,
                        announced=limit, give_up_bytes=give_up, give_up_s=self.t.transfer)
        chunk = max(256, min(4096, limit // 64))
        why = f"{give_up} B went through each way without a cut"
        try:
            with trio.move_on_after(self.t.transfer) as scope:
                try:
                    s = await net.open_stream(conn, ECHO_PROTOCOL, self.t.transfer)
                    # Every byte goes both ways: a relay with one budget for both directions cuts at
                    # half the limit sent, one with a budget per direction (go-libp2p's) at the whole
                    # limit; so the echo goes on until each direction alone passed GIVE_UP.
                    while (min(stream.bytes_sent, stream.bytes_received) < give_up
                           and not stream.ended.is_set()):
                        payload = os.urandom(chunk)
                        await s.write(payload)
                        await net.read_exactly(s, chunk)
                except Exception as exc:  # noqa: BLE001  (classify re-raises bugs, unless the relay's cut explains it)
                    with trio.move_on_after(CUT_SETTLE_S):
                        await stream.ended.wait()
                    why = stream.end_reason or f"the echo failed: {net.classify(exc)[1]}"
            if scope.cancelled_caught:
                why = f"no cut within {self.t.transfer:g} s (--step-timeout transfer)"
            self.rec.record(LimitProbeEnded, relay=self.relay.addr, connection_id=cid, limit=LimitKind.DATA,
                            cut=stream.ended.is_set(), bytes_sent=stream.bytes_sent,
                            bytes_received=stream.bytes_received, age_s=stream.age_s(), reason=why)
        finally:
            await self.close_circuit(conn, stream, cid)

    async def measure_duration(self, a: _Identity, b: _Identity, b_conn: Any, announced: int | None) -> None:
        left = trio.current_effective_deadline() - trio.current_time()
        wait, why = duration_wait(read_duration(announced, self.agent).effective_s, self.opts.measure_max_s,
                                  left - self.t.hop - self.t.secure)
        if wait is None:
            return self.skip([CheckPhase.MEASURE_DURATION], why)
        opened = await self.open_measured(CheckPhase.MEASURE_DURATION, a, b, b_conn)
        if opened is None:
            return
        conn, stream, cid = opened
        self.rec.record(LimitProbeStarted, relay=self.relay.addr, connection_id=cid, limit=LimitKind.DURATION,
                        announced=announced, give_up_bytes=None, give_up_s=wait)
        pinger = circ.Pinger(conn, cid, Path.RELAYED, self.rec, self.t, relay=self.relay.addr)
        try:
            with trio.move_on_after(wait - stream.age_s()):
                while not stream.ended.is_set():
                    if isinstance(await pinger.ping(), PingFailed) and not stream.ended.is_set():
                        with trio.move_on_after(CUT_SETTLE_S):
                            await stream.ended.wait()
                        break
                    with trio.move_on_after(MEASURE_PING_INTERVAL_S):
                        await stream.ended.wait()
            self.rec.record(LimitProbeEnded, relay=self.relay.addr, connection_id=cid, limit=LimitKind.DURATION,
                            cut=stream.ended.is_set(), bytes_sent=stream.bytes_sent,
                            bytes_received=stream.bytes_received, age_s=stream.age_s(),
                            reason=stream.end_reason or f"still open after {stream.age_s():.1f} s")
        finally:
            await self.close_circuit(conn, stream, cid)

    async def drop(self, a: _Identity, a_conn: Any, b: _Identity, b_conn: Any) -> None:
        """A reservation lives only while its connection does: close A's, then ask for A."""
        self.phase(CheckPhase.DROP, a)
        await net.close_quietly(a_conn)
        self.rec.record(RelayConnectionClosed, relay=self.relay.addr, peer_id=a.peer_id)
        await trio.sleep(DROP_SETTLE_S)
        for attempt in range(2):
            got = await hop_connect(b_conn, self.relay, a.peer_id, self.rec, self.t)
            if got is not None:  # the relay says it reached A: nothing is there, so close it at once
                await net.reset_quietly(got[0])
            answer = _last(self.rec, self.relay.addr, HopStatusReceived, HopFailed)
            if attempt or (isinstance(answer, HopStatusReceived) and answer.status_name == "NO_RESERVATION"):
                return
            await trio.sleep(DROP_RETRY_S)

    async def slots(self, n: int) -> None:
        """N identities reserve one after another; stop at the first refusal and see if freeing helps."""
        async with AsyncExitStack() as stack:
            held: list[tuple[_Identity, Any]] = []
            for k in range(1, n + 1):
                who = await stack.enter_async_context(_identity())
                self.phase(CheckPhase.SLOT, who, k)
                conn = await connect_relay(who.host, self.relay, self.rec, self.t)
                if conn is None:
                    return self.skip([CheckPhase.SLOT_AFTER_FREE], f"identity {k} could not connect")
                if await reserve(conn, self.relay, self.rec, self.t) is None:
                    break
                held.append((who, conn))
            else:
                return
            if not held:
                return self.skip([CheckPhase.SLOT_AFTER_FREE], "p2pdiag held no slot it could free")
            freed, freed_conn = held.pop()
            await net.close_quietly(freed_conn)
            self.rec.record(RelayConnectionClosed, relay=self.relay.addr, peer_id=freed.peer_id)
            await trio.sleep(DROP_SETTLE_S)
            self.phase(CheckPhase.SLOT_AFTER_FREE, who, k)
            if conn.is_closed:  # some relays hang up on a peer they refuse
                conn = await connect_relay(who.host, self.relay, self.rec, self.t)
            if conn is not None:
                await reserve(conn, self.relay, self.rec, self.t)

    # --- A's side of a circuit -------------------------------------------------------------

    async def _on_stop(self, stream: Any) -> None:
        cid = self.cid(f"{self.inbound_name}-in")
        relay_peer_id = str(getattr(stream.muxed_conn, "peer_id", "?"))
        began = self.rec.now()
        try:
            with trio.fail_after(self.t.stop):
                msg = circuit.StopMessage.decode(await net.read_delimited(stream, circuit.MAX_MESSAGE_BYTES))
                if msg.type != circuit.StopType.CONNECT or msg.peer is None:
                    raise pb.MalformedMessage(f"expected STOP CONNECT with a peer, got StopMessage type {msg.type}")
                source = net.peer_id_from_bytes(msg.peer.id)
                self.rec.record(StopConnectReceived, relay_peer_id=relay_peer_id, source_peer_id=source,
                                connection_id=cid,
                                announced_duration_s=msg.limit.duration if msg.limit else None,
                                announced_data_bytes=msg.limit.data if msg.limit else None)
                ok = circuit.StopMessage(type=circuit.StopType.STATUS, status=circuit.Status.OK)
                await net.write_delimited(stream, ok.encode())
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, message = net.classify(exc)
            if kind is ErrorKind.TIMEOUT:
                self.timed_out("stop", self.t.stop)
            self.rec.record(CircuitUpgradeFailed, connection_id=cid, relay=self.relay.addr, error_kind=kind,
                            error=f"STOP exchange: {message}", duration_s=self.rec.now() - began)
            await net.reset_quietly(stream)
            return
        cstream = circ.CircuitStream(stream, self.rec)
        if self.inbound_name == "loop":
            try:
                with trio.move_on_after(self.opts.relay_budget_s):
                    await _serve_loop(cstream)
            finally:
                await self.close_circuit(None, cstream, cid)
            return
        conn = await circ.secure(self.a_host, cstream, inbound=True, relay=self.relay.addr,
                                 relay_peer_id=relay_peer_id, remote_peer_id=source, connection_id=cid,
                                 rec=self.rec, timeouts=self.t)
        if conn is None:
            return
        try:
            with trio.move_on_after(self.opts.relay_budget_s):
                await cstream.ended.wait()
        finally:
            await self.close_circuit(conn, cstream, cid)


def _echo_mismatch(sent: bytes, echo: bytes) -> str:
    if echo == sent:
        return "the relay sent the ping back itself instead of relaying it to the first identity"
    differ = sum(x != y for x, y in zip(sent[1:], echo[1:], strict=False)) + abs(len(sent) - len(echo))
    return f"the ping came back changed ({differ} of {len(sent) - 1} bytes differ, tag {echo[:1]!r})"


async def _serve_loop(stream: circ.CircuitStream) -> None:
    """A's end of the raw loop circuit: echo each ping; count and hash a payload and answer with both.
    Returns when B closes the circuit; anything else ends it (the relay's bytes were not ours)."""
    # the circuit ended or carried bytes that are not ours, whatever that raised: B's side records why
    with contextlib.suppress(Exception):
        while kind := await stream.read(1):
            if kind == LOOP_PING:
                await stream.write(LOOP_ECHO + await net.read_exactly(stream, PING_PAYLOAD_BYTES))
            elif kind == LOOP_SINK:
                (size,) = struct.unpack(">Q", await net.read_exactly(stream, 8))
                if size > SINK_MAX_BYTES:
                    raise pb.MalformedMessage(f"{size} B is more than the sink takes")
                got, digest = 0, hashlib.sha256()
                while got < size:
                    try:
                        chunk = await stream.read(min(65536, size - got))
                    except EOFError:  # py-libp2p's StreamEOF: the payload ended short; say how short
                        chunk = b""
                    if not chunk:
                        break
                    got += len(chunk)
                    digest.update(chunk)
                await stream.write(LOOP_COUNT + struct.pack(">Q", got) + digest.digest())
            else:
                raise pb.MalformedMessage(f"unknown loop message {kind!r}")


async def _serve_echo(stream: Any) -> None:
    try:
        with contextlib.suppress(Exception):  # the circuit ended, however: the measuring side records why
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    break
                await stream.write(chunk)
    finally:
        await net.close_quietly(stream)
