"""A dialer that keeps coming back through the relay after each failed round: a reconnect loop.

Seen from `listen`: inbound relayed connections from one peer id, one after another, each ended
without a working upgrade (the upgrade failed or was abandoned and the dialer hung up, the relay
cut it, or the dialer closed it) and followed by the next. Pure, like the rest of the diagnosis.
"""

from __future__ import annotations

import enum
import itertools
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.findings import reconnect as R
from p2pdiag.diagnosis.limits import attribute_cut, read_duration
from p2pdiag.diagnosis.model import Confidence, Finding
from p2pdiag.diagnosis.query import all_of, first
from p2pdiag.diagnosis.relayed import CLOSED_AFTER_UPGRADE_S
from p2pdiag.diagnosis.upgrade import UpgradeStory, upgrade_story
from p2pdiag.trace.events import (
    CircuitClosed,
    CircuitSecured,
    CircuitUpgradeFailed,
    Closer,
    Event,
    StopConnectReceived,
    WebRTCConnectionClosed,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
)

# Three rounds: the first attempt and two returns. One retry after a failure is what a careful
# app does (and what a person pressing reload does), so two rounds are not a loop; with three
# there are two intervals, so the period is measured, not guessed.
LOOP_MIN_ROUNDS = 3
MAX_LISTED_ROUNDS = 6


class RoundEnd(enum.Enum):
    """What ended one round (one inbound relayed connection), as far as this side could see."""

    UPGRADE_FAILED = "upgrade-failed"  # the upgrade failed or was abandoned; the dialer hung up then
    RELAY_CUT = "relay-cut"  # the relay ended the circuit (a reset, or a close at its limit)
    REMOTE_CLOSED = "remote-closed"  # the dialer closed it, not right after an upgrade attempt
    HANDSHAKE_FAILED = "handshake-failed"  # no secure session over the circuit
    UPGRADED = "upgraded"  # not a failed round: the upgrade worked
    OPEN = "open"  # not ended by the other side: open, or closed by p2pdiag, when the run stopped


FAILED_ENDS = (RoundEnd.UPGRADE_FAILED, RoundEnd.RELAY_CUT, RoundEnd.REMOTE_CLOSED, RoundEnd.HANDSHAKE_FAILED)


@dataclass(frozen=True, slots=True)
class Round:
    connection_id: str
    started_s: float
    upgrade: str  # "failed at ice", "abandoned", "upgraded", "not attempted", "unfinished"
    end: RoundEnd
    closed_s: float | None  # when the relayed connection ended (None: it had not)


@dataclass(frozen=True, slots=True)
class ReconnectLoop:
    peer_id: str
    rounds: tuple[Round, ...]

    @property
    def intervals_s(self) -> list[float]:
        starts = [r.started_s for r in self.rounds]
        return [round(b - a, 3) for a, b in itertools.pairwise(starts)]

    @property
    def period_s(self) -> float:
        """The median interval between round starts: the loop's period, robust to one slow round."""
        return round(statistics.median(self.intervals_s), 3)

    @property
    def confidence(self) -> Confidence:
        """Certain when every return followed a failed upgrade and the dialer's hang-up, all seen here."""
        returned_after = self.rounds[:-1]
        return (Confidence.CERTAIN if all(r.end is RoundEnd.UPGRADE_FAILED for r in returned_after)
                else Confidence.LIKELY)

    def as_fact(self) -> dict[str, object]:
        return {"peer_id": self.peer_id, "rounds": len(self.rounds), "period_s": self.period_s,
                "intervals_s": self.intervals_s, "connection_ids": [r.connection_id for r in self.rounds],
                "started_s": [round(r.started_s, 3) for r in self.rounds],
                "ended_by": [r.end.value for r in self.rounds], "upgrades": [r.upgrade for r in self.rounds],
                "confidence": self.confidence.value}


def round_of(events: tuple[Event, ...], stop: StopConnectReceived, agents: dict[str, str | None],
             stories: Mapping[str, UpgradeStory]) -> Round:
    """The round of one inbound relayed connection, from EVENTS (the whole trace, or its attempt's)."""
    cid = stop.connection_id
    closed = first(events, CircuitClosed, connection_id=cid)
    closed_s = closed.t_s if closed is not None else None
    if first(events, CircuitSecured, connection_id=cid) is None:
        failed = first(events, CircuitUpgradeFailed, connection_id=cid)
        end = RoundEnd.HANDSHAKE_FAILED if failed is not None else RoundEnd.OPEN
        return Round(cid, stop.t_s, "not attempted", end, failed.t_s if failed else closed_s)
    story = stories.get(cid) or upgrade_story(events, cid)
    abandoned = any(f.code is Code.WEBRTC_UPGRADE_ABANDONED for f in story.findings)
    upgrade_end_s: float | None = None
    if not story.attempted:
        upgrade = "not attempted"
    else:
        started = first(events, WebRTCUpgradeStarted, relayed_connection_id=cid)
        wid = started.connection_id if started else None
        failed_upgrade = first(events, WebRTCUpgradeFailed, connection_id=wid)
        webrtc_closed = first(events, WebRTCConnectionClosed, connection_id=wid)
        ending = failed_upgrade or webrtc_closed
        upgrade_end_s = ending.t_s if ending is not None else None
        if abandoned:
            upgrade = "abandoned"
        elif story.upgraded:
            upgrade = "upgraded"
        elif failed_upgrade is not None:
            upgrade = f"failed at {failed_upgrade.step.value}"
        else:
            upgrade = "unfinished"
    if story.upgraded and not abandoned:
        return Round(cid, stop.t_s, upgrade, RoundEnd.UPGRADED, closed_s)
    if closed is None or closed.closer is Closer.LOCAL:
        return Round(cid, stop.t_s, upgrade, RoundEnd.OPEN, closed_s)
    reading = read_duration(stop.announced_duration_s, agents.get(stop.relay_peer_id))
    cut = attribute_cut(closed.age_s, closed.bytes_sent, closed.bytes_received, reading,
                        stop.announced_data_bytes or None)
    if closed.closer is Closer.RELAY or cut.cause != "unexplained":
        end = RoundEnd.RELAY_CUT
    elif story.attempted and (upgrade_end_s is None or closed.t_s - upgrade_end_s <= CLOSED_AFTER_UPGRADE_S):
        end = RoundEnd.UPGRADE_FAILED  # hung up during the attempt, or soon after it failed
    else:
        end = RoundEnd.REMOTE_CLOSED
    return Round(cid, stop.t_s, upgrade, end, closed_s)


def reconnect_loops(events: tuple[Event, ...], agents: dict[str, str | None],
                    stories: Mapping[str, UpgradeStory] | None = None,
                    events_of: Callable[[str], tuple[Event, ...]] | None = None) -> list[ReconnectLoop]:
    """Every run of LOOP_MIN_ROUNDS or more rounds from one peer, each after a failed one.

    `stories`: the upgrade stories listen's diagnosis already told, by relayed connection id; an
    upgrade not among them is told here. `events_of`: a round's events by its connection id
    (listen's `Attempts`), where the whole trace would be read for each round."""
    by_peer: dict[str, list[Round]] = {}
    for stop in sorted(all_of(events, StopConnectReceived), key=lambda s: s.t_s):
        read = events_of(stop.connection_id) if events_of is not None else events
        by_peer.setdefault(stop.source_peer_id, []).append(round_of(read, stop, agents, stories or {}))
    loops = []
    for peer_id, rounds in by_peer.items():
        run: list[Round] = []
        for r in rounds:
            if run and run[-1].end not in FAILED_ENDS:
                if len(run) >= LOOP_MIN_ROUNDS:
                    loops.append(ReconnectLoop(peer_id, tuple(run)))
                run = []
            run.append(r)
        if len(run) >= LOOP_MIN_ROUNDS:
            loops.append(ReconnectLoop(peer_id, tuple(run)))
    return sorted(loops, key=lambda loop: loop.rounds[0].started_s)


def _describe(r: Round, next_start_s: float | None) -> str:
    text = f"{r.connection_id} at t={r.started_s:.1f} s: WebRTC upgrade {r.upgrade}"
    if r.closed_s is not None and r.end is not RoundEnd.OPEN:
        text += f"; {_END_WORDS[r.end]} at t={r.closed_s:.1f} s, {r.closed_s - r.started_s:.1f} s after it opened"
    elif r.end is RoundEnd.UPGRADED:
        text += "; the loop ended here"
    else:
        text += "; still open when listening stopped"
    if next_start_s is not None and r.closed_s is not None:
        text += f"; back {max(0.0, next_start_s - r.closed_s):.1f} s later"
    return text


_END_WORDS = {
    RoundEnd.UPGRADE_FAILED: "the dialer hung up",
    RoundEnd.RELAY_CUT: "the relay cut it",
    RoundEnd.REMOTE_CLOSED: "the dialer closed it",
    RoundEnd.HANDSHAKE_FAILED: "the secure handshake failed",
    RoundEnd.UPGRADED: "it ended",
}


def reconnect_loop_finding(loop: ReconnectLoop) -> Finding:
    n = len(loop.rounds)
    ends = [r.end for r in loop.rounds[:-1]]
    counts = ", ".join(f"{ends.count(e)} {e.value}" for e in dict.fromkeys(ends))
    intervals = ", ".join(f"{i:.1f}" for i in loop.intervals_s[:MAX_LISTED_ROUNDS])
    evidence = [(f"{n} rounds from {loop.peer_id}, one every {loop.period_s:.1f} s (median interval between "
                 f"round starts; intervals {intervals} s); rounds before a return ended: {counts}")]
    for k, r in enumerate(loop.rounds[:MAX_LISTED_ROUNDS]):
        nxt = loop.rounds[k + 1].started_s if k + 1 < n else None
        evidence.append(_describe(r, nxt))
    if n > MAX_LISTED_ROUNDS:
        evidence.append(f"… and {n - MAX_LISTED_ROUNDS} more rounds")
    return R.reconnect_loop(n, loop.period_s, tuple(evidence), RoundEnd.RELAY_CUT in ends, loop.confidence)
