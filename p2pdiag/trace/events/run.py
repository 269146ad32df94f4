"""Events of the run itself: the dial target, timeouts, the hold, the end."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from p2pdiag.trace.events.base import ConnectionEvent, Event, register


class DialMethod(enum.Enum):
    MULTIADDR = "multiaddr"  # a full .../p2p-circuit/... address
    PEER_ID = "peer_id"  # a peer id plus --relay addresses


class InterruptReason(enum.Enum):
    SIGNAL = "signal"  # Ctrl-C or SIGTERM
    BUDGET = "budget"  # the overall --timeout ran out


# --- the dial target -------------------------------------------------------------------------


@register("target.resolved")
@dataclass(frozen=True, slots=True, kw_only=True)
class TargetResolved(Event):
    peer_id: str
    relays: tuple[str, ...]
    method: DialMethod
    webrtc_requested: bool



# --- the run ---------------------------------------------------------------------------------


@register("step.timed_out")
@dataclass(frozen=True, slots=True, kw_only=True)
class StepTimedOut(Event):
    step: str
    timeout_s: float
    relay: str | None = None  # the relay whose check or connection the step was for (relay-check: which relay)


@register("upgrade.not_attempted")
@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeNotAttempted(Event):
    reason: str


@register("hold.started")
@dataclass(frozen=True, slots=True, kw_only=True)
class HoldStarted(ConnectionEvent):
    hold_s: float
    ping_interval_s: float


@register("run.interrupted")
@dataclass(frozen=True, slots=True, kw_only=True)
class RunInterrupted(Event):
    reason: InterruptReason


@register("run.finished")
@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    pass
