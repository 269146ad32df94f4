"""The reservation holder's timing rules on trio's virtual time (MockClock, autojump).

Real sockets cannot run under an autojumping clock, so the relay here is `ScriptedRelay`, a stand-in
that answers RESERVE with a TTL and can restart, refuse or hang: it is a mock of the relay, for the
holder's schedule only. tests/live/test_watch_probes.py and tests/interop/test_watch_probes_js.py
hold reservations on real py and js relays.
"""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from p2pdiag.targets import parse_relay
from p2pdiag.watch.hold import MIN_REFRESH_S, ReservationHolder, refresh_delay
from p2pdiag.watch.model import RelayTarget
from p2pdiag.watch.probes import ProbeContext, Reservation

EPOCH = 1_800_000_000.0
RELAY = parse_relay("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")


def wall() -> float:
    return EPOCH + trio.current_time()


class ScriptedRelay:
    """A relay on virtual time: gives reservations of `ttl_s`, can go down (closing every
    connection to it), refuse, or never answer."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.up = True
        self.refuse: str | None = None  # a Status name to answer RESERVE with
        self.hang = False
        self.reserves: list[tuple[float, bool]] = []  # (time, refresh)
        self.sessions: list[_Session] = []

    def restart(self) -> None:
        self.up = False
        for s in self.sessions:
            s.gone.set()

    def session(self) -> _Session:
        s = _Session(self)
        self.sessions.append(s)
        return s


class _Session:
    def __init__(self, relay: ScriptedRelay) -> None:
        self.relay = relay
        self.gone = trio.Event()
        self.closed_by_holder = False

    async def _reserve(self, refresh: bool) -> Reservation:
        await trio.sleep(0.01)  # a round trip
        if self.relay.hang:
            await trio.sleep_forever()
        if not self.relay.up or self.gone.is_set():
            return Reservation(False, "NO_ANSWER", error_kind="refused", error="could not connect: refused")
        self.relay.reserves.append((trio.current_time(), refresh))
        if self.relay.refuse:
            return Reservation(False, self.relay.refuse, error_kind=self.relay.refuse, error="RESERVE: refused")
        return Reservation(True, "OK", wall() + self.relay.ttl_s, 120.0, 1 << 17)

    async def open(self) -> Reservation:
        return await self._reserve(False)

    async def refresh(self) -> Reservation:
        return await self._reserve(True)

    async def closed(self) -> str:
        await self.gone.wait()
        return "the connection to the relay closed"

    async def close(self) -> None:
        self.closed_by_holder = True


def hold(relay: ScriptedRelay, scenario, interval_s: float = 30.0, timeout_s: float = 10.0):
    """Run a holder on RELAY while SCENARIO(states) runs, then cancel it; the states it reported."""
    states = []
    target = RelayTarget(name="r1", interval_s=interval_s, timeout_s=timeout_s, relay=RELAY)
    ctx = ProbeContext(host=None, wall_clock=wall)

    async def main():
        holder = ReservationHolder(ctx, target, states.append, session=relay.session)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder.run)
            await scenario(states)
            nursery.cancel_scope.cancel()
        return holder

    holder = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return states, holder


@pytest.mark.parametrize("ttl, delay", [
    (3600, 2700),  # 3/4 of the TTL comes first
    (600, 450),
    (200, 140),  # expiry less 60 s comes first
    (64, MIN_REFRESH_S),  # expiry less 60 s is 4 s: never more often than every 5 s
    (10, MIN_REFRESH_S),
    (-30, MIN_REFRESH_S),  # an expiry already past (a relay's clock behind ours)
])
def test_refresh_delay(ttl, delay):
    assert refresh_delay(ttl) == pytest.approx(delay)


@pytest.mark.parametrize("ttl, delay", [(3600, 2700), (200, 140), (10, MIN_REFRESH_S)])
def test_refreshes_before_expiry_and_reports_each(ttl, delay):
    relay = ScriptedRelay(ttl)

    async def scenario(states):
        await trio.sleep(3 * delay + 1)

    states, _ = hold(relay, scenario)
    times = [t for t, _ in relay.reserves]
    assert [r for _, r in relay.reserves] == [False, True, True, True]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([delay] * 3, abs=0.05)
    assert [s.up for s in states] == [True] * 4 and [s.refreshes for s in states] == [0, 1, 2, 3]
    assert all(s.expiry_unix_s == pytest.approx(s.at_unix_s + ttl, abs=0.05) for s in states)
    assert states[0].limit_duration_s == 120.0 and states[0].limit_data_bytes == 1 << 17


def test_a_restart_is_seen_at_once_and_the_reservation_made_again():
    relay = ScriptedRelay(3600)
    restart_at, back_at = 100.0, 200.0

    async def scenario(states):
        await trio.sleep(restart_at)
        relay.restart()
        await trio.sleep(back_at - restart_at)
        relay.up = True
        await trio.sleep(60)

    states, _ = hold(relay, scenario, interval_s=30)
    made, lost, refused, back = states
    assert made.up and made.at_unix_s == pytest.approx(EPOCH, abs=0.05)
    assert not lost.up and lost.error_kind == "closed" and lost.at_unix_s == pytest.approx(EPOCH + restart_at)
    # tried every 30 s while it was down (at 130, 160, 190), reported once more only because the reason changed
    assert not refused.up and refused.error_kind == "refused"
    assert refused.at_unix_s == pytest.approx(EPOCH + restart_at + 30, abs=0.05)
    assert back.up and back.refreshes == 0 and back.at_unix_s == pytest.approx(EPOCH + 220, abs=0.05)
    assert all(s.closed_by_holder for s in relay.sessions)  # each connection closed before the next


def test_a_relay_that_never_answers_is_down_within_the_timeout():
    relay = ScriptedRelay(3600)
    relay.hang = True

    async def scenario(states):
        await trio.sleep(45)

    states, _ = hold(relay, scenario, interval_s=30, timeout_s=10)
    (down,) = states  # a second attempt at 40 s hangs too: same reason, nothing new to report
    assert not down.up and down.error_kind == "timeout" and "10 s" in down.error
    assert EPOCH + 9 <= down.at_unix_s <= EPOCH + 10
    assert len(relay.sessions) == 2 and relay.sessions[0].closed_by_holder


def test_a_refused_refresh_is_a_loss_with_its_status():
    relay = ScriptedRelay(200)

    async def scenario(states):
        await trio.sleep(100)
        relay.refuse = "RESERVATION_REFUSED"
        await trio.sleep(50)

    states, _ = hold(relay, scenario)
    made, lost = states
    assert made.up and not lost.up and lost.error_kind == "RESERVATION_REFUSED"
    assert lost.at_unix_s == pytest.approx(EPOCH + 140, abs=0.05)


def test_cancelling_the_holder_closes_its_connection_even_mid_reserve():
    relay = ScriptedRelay(3600)
    relay.hang = True

    async def scenario(states):
        await trio.sleep(1)  # inside the first, hanging, RESERVE

    states, holder = hold(relay, scenario)
    assert states == [] and holder.state is None
    assert relay.sessions and relay.sessions[0].closed_by_holder
