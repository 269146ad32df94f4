"""The reservation `watch` holds on a relay between probes, and how its life is reported.

A `ReservationHolder` is one long-running trio task per relay target (`target.reserve`): it
connects, identifies the relay and reserves; reports `ReservationState(up=True, expiry, limits)`;
refreshes before the expiry (at the earlier of 3/4 of the TTL or the expiry less 60 s, never more
often than every 5 s); notices at once when the relay connection closes (a relay restart) and
reports `up=False` with why; then tries again every `target.interval_s`, each attempt and each
refresh bounded by `target.timeout_s`, and reports `up=True` again when the relay is back.
A state is reported when it changes: made, refreshed, lost, or lost for another reason.
Cancelling the task closes its connection.

The relay is reached through a `RelaySession` (`LiveSession`: py-libp2p through probes/relay.py,
as `probe_relay` does); the tests of the timing rules give it another session on virtual time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import trio

from p2pdiag.probes import net
from p2pdiag.probes.relay import connect_relay, identify
from p2pdiag.targets import RelayAddr
from p2pdiag.trace.events import ErrorKind, RelayDialFailed, Subject
from p2pdiag.trace.recorder import Recorder
from p2pdiag.watch.model import RelayTarget, ReservationState
from p2pdiag.watch.probes import ProbeContext, Reservation, close_margin, reserve_once

REFRESH_SHARE = 0.75  # refresh at 3/4 of the TTL …
REFRESH_BEFORE_EXPIRY_S = 60.0  # … or a minute before the expiry, whichever is earlier
MIN_REFRESH_S = 5.0  # and never more often than this
CLOSE_S = 2.0  # closing the relay connection when the holder stops or starts over


def refresh_delay(ttl_s: float) -> float:
    """Seconds from a reservation (or its refresh) with TTL_S left until the next refresh."""
    return max(min(REFRESH_SHARE * ttl_s, ttl_s - REFRESH_BEFORE_EXPIRY_S), MIN_REFRESH_S)


class RelaySession(Protocol):
    """One connection to a relay that a reservation rides on."""

    async def open(self) -> Reservation: ...  # connect, identify, RESERVE; never raises for the network's faults
    async def refresh(self) -> Reservation: ...  # RESERVE again on the same connection
    async def closed(self) -> str: ...  # returns (why) when the connection closes
    async def close(self) -> None: ...


class LiveSession:
    """A relay connection of the watch host (its one identity), with a reservation on it."""

    def __init__(self, ctx: ProbeContext, relay: RelayAddr) -> None:
        self._ctx = ctx
        self._relay = relay
        self._conn: Any = None
        self._agent: str | None = None

    async def open(self) -> Reservation:
        rec = Recorder(trio.current_time)  # one per exchange: a holder lives for days
        self._conn = await connect_relay(self._ctx.host, self._relay, rec, self._ctx.timeouts)
        if self._conn is None:
            failed = next(e for e in reversed(rec.events) if isinstance(e, RelayDialFailed))
            return Reservation(False, "NO_ANSWER", error_kind=failed.error_kind.value,
                               error=f"could not connect to the relay: {failed.error}")
        ident = await identify(self._conn, Subject.RELAY, self._relay.peer_id, "hold", rec, self._ctx.timeouts,
                               relay=self._relay.addr)
        self._agent = ident.agent_version if ident is not None else None
        return await reserve_once(self._conn, self._relay, rec, self._ctx.timeouts, self._agent)

    async def refresh(self) -> Reservation:
        return await reserve_once(self._conn, self._relay, Recorder(trio.current_time), self._ctx.timeouts,
                                  self._agent, refresh=True)

    async def closed(self) -> str:
        await self._conn.event_closed.wait()
        return "the connection to the relay closed"

    async def close(self) -> None:
        if self._conn is not None:
            await net.close_quietly(self._conn)


class ReservationHolder:
    """Holds a reservation on one relay target until cancelled, reporting each change of its state."""

    def __init__(self, ctx: ProbeContext, target: RelayTarget, report: Callable[[ReservationState], None],
                 session: Callable[[], RelaySession] | None = None) -> None:
        self._ctx = ctx
        self._target = target
        self._report = report
        self._session = session or (lambda: LiveSession(ctx, target.relay))
        self.state: ReservationState | None = None

    async def run(self) -> None:
        """Hold, and after each loss try again every interval_s; returns only by cancellation."""
        while True:
            session = self._session()
            try:
                await self._hold(session)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
                    await session.close()
            await trio.sleep(self._target.interval_s)

    async def _bounded(self, call: Callable[[], Any], what: str) -> Reservation:
        timeout = self._target.timeout_s - close_margin(self._target.timeout_s)
        with trio.move_on_after(timeout):
            return await call()
        return Reservation(False, "NO_ANSWER", error_kind=ErrorKind.TIMEOUT.value,
                           error=f"no {what} within {self._target.timeout_s:g} s")

    async def _hold(self, session: RelaySession) -> None:
        got = await self._bounded(session.open, "reservation")
        refreshes = 0
        while got.ok:
            self._up(got, refreshes)
            with trio.move_on_after(self._next_refresh(got)):
                why = await session.closed()
                self._down(ErrorKind.CLOSED.value, why)
                return
            got = await self._bounded(session.refresh, "refresh")
            refreshes += 1
        self._down(got.error_kind or "", got.error or "")

    def _next_refresh(self, got: Reservation) -> float:
        if got.expiry_unix_s is None:  # no expiry given: refresh every interval
            return max(self._target.interval_s, MIN_REFRESH_S)
        return refresh_delay(got.expiry_unix_s - self._ctx.wall_clock())

    def _up(self, got: Reservation, refreshes: int) -> None:
        self._set(ReservationState(target=self._target.name, up=True, at_unix_s=self._ctx.wall_clock(),
                                   expiry_unix_s=got.expiry_unix_s, refreshes=refreshes,
                                   limit_duration_s=got.limit_duration_s, limit_data_bytes=got.limit_data_bytes))

    def _down(self, kind: str, error: str) -> None:
        last = self.state
        if last is not None and not last.up and last.error_kind == kind:
            return  # still down, for the same reason: no change to report
        self._set(ReservationState(target=self._target.name, up=False, at_unix_s=self._ctx.wall_clock(),
                                   error_kind=kind, error=error))

    def _set(self, state: ReservationState) -> None:
        self.state = state
        self._report(state)
