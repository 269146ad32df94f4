"""Reading a relay's announced Limit, and matching a circuit cut against it.

The spec gives Limit.duration in seconds. js-libp2p relays write milliseconds (120000 for their
two-minute default) and js clients read that as seconds, so a duration that is implausibly
long, or a whole number of thousands from a js relay, is most likely milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

IMPLAUSIBLE_DURATION_S = 24 * 3600
CUT_EARLY_TOLERANCE_S = 1.0
CUT_LATE_TOLERANCE_S = 3.0  # py-libp2p relays check the clock only when a chunk arrives
DATA_MATCH_FRACTION = 0.75


@dataclass(frozen=True, slots=True)
class DurationReading:
    announced: int | None
    effective_s: float | None  # what the relay most likely enforces; None = no limit
    suspect_unit: bool
    reason: str
    # a limit of 0 on the wire: none, or one under this many seconds (go-libp2p writes whole seconds,
    # truncating, so its relay set to 500 ms announces 0 and cuts at 0.5 s)
    under_s: float | None = None


def is_js_agent(agent: str | None) -> bool:
    return bool(agent) and "js-libp2p" in (agent or "")


def read_duration(announced: int | None, relay_agent: str | None) -> DurationReading:
    if announced is None:
        return DurationReading(announced, None, False, "no duration limit announced")
    if announced == 0:
        return DurationReading(announced, None, False, "no duration limit announced", under_s=1.0)
    if announced > IMPLAUSIBLE_DURATION_S:
        return DurationReading(
            announced,
            announced / 1000,
            True,
            f"{announced} s is {announced / 3600:.1f} hours, far beyond any relay's limit; "
            f"as milliseconds it is {fmt_seconds(announced / 1000)}",
        )
    if is_js_agent(relay_agent) and announced >= 1000 and announced % 1000 == 0:
        return DurationReading(
            announced,
            announced / 1000,
            True,
            f"js-libp2p relays write this field in milliseconds; {announced} is "
            f"{fmt_seconds(announced / 1000)}",
        )
    return DurationReading(announced, float(announced), False, f"{fmt_seconds(announced)}")


@dataclass(frozen=True, slots=True)
class CutCause:
    cause: str  # "duration", "data" or "unexplained"
    detail: str


def attribute_cut(
    age_s: float,
    bytes_sent: int,
    bytes_received: int,
    duration: DurationReading,
    data_limit: int | None,
) -> CutCause:
    total = bytes_sent + bytes_received
    data_hit = bool(data_limit) and (
        total >= DATA_MATCH_FRACTION * data_limit  # type: ignore[operator]
        or max(bytes_sent, bytes_received) >= DATA_MATCH_FRACTION * data_limit  # type: ignore[operator]
    )
    limit = duration.effective_s
    duration_hit = bool(limit) and (
        limit - CUT_EARLY_TOLERANCE_S <= age_s <= limit + max(CUT_LATE_TOLERANCE_S, 0.1 * limit)  # type: ignore[operator]
    )
    if data_hit and (not duration_hit or total >= 0.9 * data_limit):  # type: ignore[operator]
        return CutCause(
            "data",
            # to the byte: a cut at 4134 bytes of a 4096-byte limit must not read "4 KiB of 4 KiB"
            f"cut at {total} bytes ({bytes_sent} sent, {bytes_received} received, counted on the circuit "
            f"below Noise) against an announced data limit of {fmt_bytes(data_limit)} ({data_limit} bytes)",
        )
    if duration_hit:
        return CutCause(
            "duration",
            f"cut {age_s:.1f} s after the circuit opened, against a duration limit of "
            f"{fmt_seconds(duration.effective_s or 0)}",
        )
    if not data_hit and duration.under_s is not None and age_s <= duration.under_s + CUT_EARLY_TOLERANCE_S:
        return CutCause(
            "duration",
            f"cut {age_s:.1f} s after the circuit opened; the relay announced a duration limit of 0, which "
            f"is what a go-libp2p relay writes for any limit under a second (it writes whole seconds, "
            f"truncated), and a circuit that ends this soon is most likely cut by it",
        )
    return CutCause(
        "unexplained",
        f"cut {age_s:.1f} s after the circuit opened and after {fmt_bytes(total)}; "
        f"announced limits: {describe_limits(duration, data_limit)}",
    )


def describe_limits(duration: DurationReading, data_limit: int | None) -> str:
    parts = []
    if duration.announced:
        parts.append(f"duration {duration.announced}" + (" (suspect unit)" if duration.suspect_unit else " s"))
    else:
        parts.append("no duration limit")
    parts.append(f"data {fmt_bytes(data_limit)}" if data_limit else "no data limit")
    return ", ".join(parts)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    if n < 1024**3:
        return f"{n / 1024 / 1024:.1f} MiB".replace(".0 MiB", " MiB")
    return f"{n / 1024**3:.1f} GiB".replace(".0 GiB", " GiB")


def fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:g} s"
    if s < 7200:
        return f"{s / 60:g} min"
    return f"{s / 3600:.1f} h"
