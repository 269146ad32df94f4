"""Reservation refresh timing, in trio's virtual time: hours of relay TTL take milliseconds."""

import trio
import trio.testing

from p2pdiag.probes.listen import MIN_REFRESH_S, keep_refreshed, refresh_delay_s

EPOCH = 1_800_000_000


def test_refresh_at_half_the_remaining_lifetime_with_a_floor():
    assert refresh_delay_s(EPOCH + 3600, EPOCH) == 1800
    assert refresh_delay_s(EPOCH + 4, EPOCH) == MIN_REFRESH_S
    assert refresh_delay_s(EPOCH - 10, EPOCH) == MIN_REFRESH_S  # already expired: refresh soon


def test_refreshes_before_each_expiry_until_the_relay_refuses():
    refreshed_at: list[float] = []

    async def main() -> None:
        def wall() -> float:
            return EPOCH + trio.current_time()

        grants = iter([EPOCH + 2 * 3600, EPOCH + 3 * 3600, None])  # the third refresh is refused

        async def refresh() -> int | None:
            refreshed_at.append(trio.current_time())
            return next(grants)

        await keep_refreshed(EPOCH + 3600, refresh, wall)

    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(main, clock=clock)
    # first at half of 1 h; then half of what is left each time; each strictly before its expiry
    assert refreshed_at[0] == 1800
    assert refreshed_at[1] == 1800 + (2 * 3600 - 1800) / 2
    assert len(refreshed_at) == 3
    expiries = [3600, 2 * 3600, 3 * 3600]
    assert all(t < e for t, e in zip(refreshed_at, expiries, strict=True))
