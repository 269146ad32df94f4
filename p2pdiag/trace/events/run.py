"""Events of the run itself: the dial target, timeouts, the hold, the end."""

from __future__ import annotations

import enum

from p2pdiag.trace.events.base import ConnectionEvent, Event, event_class, register


class DialMethod(enum.Enum):
    MULTIADDR = "multiaddr"  # a full .../p2p-circuit/... address
    PEER_ID = "peer_id"  # a peer id plus --relay addresses


class InterruptReason(enum.Enum):
    SIGNAL = "signal"  # Ctrl-C or SIGTERM
    BUDGET = "budget"  # the overall --timeout ran out


# --- the dial target -------------------------------------------------------------------------


@register("target.resolved")
@event_class
class TargetResolved(Event):
    peer_id: str
    relays: tuple[str, ...]
    method: DialMethod
    webrtc_requested: bool



# --- the run ---------------------------------------------------------------------------------


@register("step.timed_out")
@event_class
class StepTimedOut(Event):
    step: str
    timeout_s: float
    relay: str | None = None  # the relay whose check or connection the step was for (relay-check: which relay)


@register("upgrade.not_attempted")
@event_class
class UpgradeNotAttempted(Event):
    reason: str


@register("hold.started")
@event_class
class HoldStarted(ConnectionEvent):
    hold_s: float
    ping_interval_s: float


@register("run.interrupted")
@event_class
class RunInterrupted(Event):
    reason: InterruptReason


@register("run.finished")
@event_class
class RunFinished(Event):
    pass
