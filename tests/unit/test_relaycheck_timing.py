"""relay-check's waits in virtual time (trio's MockClock): a relay's share of --timeout, and how long
--measure-limits holds a circuit for the duration limit."""

from __future__ import annotations

import trio
import trio.testing

from p2pdiag.diagnosis import diagnose
from p2pdiag.probes.relaycheck import (
    MEASURE_DURATION_GRACE_S,
    CheckTarget,
    RelayCheckOptions,
    _check_one,
    duration_wait,
)
from p2pdiag.targets import parse_relay
from p2pdiag.trace.events import RunFinished
from p2pdiag.trace.events.relaycheck import ProbeCrashed, RelayCheckFinished, RelayListed
from p2pdiag.trace.file import Header, Trace
from p2pdiag.trace.recorder import Recorder

TARGET = CheckTarget("r1",
                     parse_relay("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"),
                     "argument", 1)


def _run(check, budget_s: float, listed: bool = False) -> tuple:
    clock = trio.testing.MockClock(autojump_threshold=0)
    rec = Recorder(clock=clock.current_time)
    if listed:
        rec.record(RelayListed, relay=TARGET.relay.addr, relay_peer_id=TARGET.relay.peer_id,
                   transport=TARGET.relay.transport, label=TARGET.label, source=TARGET.source, line=TARGET.line)

    async def main() -> None:
        await _check_one(TARGET, RelayCheckOptions(targets=(TARGET,), relay_budget_s=budget_s), rec, check)
        if listed:
            rec.record(RunFinished)

    trio.run(main, clock=clock)
    return rec.events


class Hangs:
    def __init__(self, *_: object) -> None:
        pass

    async def run(self) -> None:
        await trio.sleep_forever()


class Breaks(Hangs):
    async def run(self) -> None:
        await trio.sleep(3)
        raise KeyError("a reply p2pdiag did not expect")


def test_a_relay_that_never_answers_ends_at_its_share_of_the_budget():
    (finished,) = _run(Hangs, 28.0)
    assert isinstance(finished, RelayCheckFinished) and finished.out_of_time
    assert finished.duration_s == 28.0 and finished.t_s == 28.0


def test_a_bug_on_one_relay_is_recorded_and_ends_only_that_check():
    crashed, finished = _run(Breaks, 28.0)
    assert isinstance(crashed, ProbeCrashed) and crashed.error_type == "KeyError"
    assert not finished.out_of_time and finished.duration_s == 3.0


def test_a_bug_on_one_relay_is_p2pdiags_not_a_failed_relay():
    events = _run(Breaks, 28.0, listed=True)
    verdict = diagnose(Trace(Header("relay-check", {}, "2026-12-07T00:00:00Z", "0"), events))
    (result,) = verdict.details.relays
    assert [f.code.value for f in verdict.findings] == ["relay-check-crashed"]
    assert result.verdict.value == "incomplete"  # the check is unfinished; the relay failed nothing


def test_duration_measurement_waits_past_the_limit_and_no_longer_than_asked():
    assert duration_wait(120.0, 300.0, 1000.0) == (132.0, "")  # 10% grace past two minutes
    assert duration_wait(4.0, 300.0, 100.0) == (4.0 + MEASURE_DURATION_GRACE_S, "")
    wait, why = duration_wait(3600.0, 300.0, 10_000.0)
    assert wait is None and "--measure-max 300" in why
    wait, why = duration_wait(120.0, 300.0, 20.0)
    assert wait is None and "only 20 s of --timeout" in why
    assert duration_wait(None, 300.0, 1000.0) == (None, "the relay announced no duration limit")
