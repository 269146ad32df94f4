"""One short stderr line per event while a run is live. It describes; it does not judge."""

from __future__ import annotations

import sys
from typing import TextIO

from p2pdiag.trace import events as ev


def describe(e: ev.Event) -> str | None:
    match e:
        case ev.RelayDialStarted():
            return f"connecting to relay {e.relay}"
        case ev.RelayConnected():
            return f"relay connected ({e.security}, {e.muxer}) in {e.duration_s * 1000:.0f} ms"
        case ev.RelayDialFailed():
            return f"relay connection failed: {e.error_kind.value}"
        case ev.IdentifyCompleted():
            return f"{e.subject.value} identified: {e.agent_version or 'no agent'}, {len(e.protocols)} protocols"
        case ev.HopConnectSent():
            return f"HOP CONNECT to {e.target_peer_id}"
        case ev.HopStatusReceived():
            return f"relay answered {e.status_name}"
        case ev.ReservationAccepted():
            return "reservation " + ("refreshed" if e.refresh else "accepted")
        case ev.ReservationFailed():
            return f"reservation failed: {e.status_name}"
        case ev.StopConnectReceived():
            return f"inbound relayed connection from {e.source_peer_id}"
        case ev.CircuitSecured():
            return f"relayed connection {e.connection_id} secured ({e.security}, {e.muxer})"
        case ev.PingCompleted():
            return f"ping over {e.path.value} {e.connection_id}: {e.rtt_s * 1000:.1f} ms"
        case ev.PingFailed():
            return f"ping over {e.path.value} {e.connection_id} failed: {e.error_kind.value}"
        case ev.CircuitClosed():
            return f"relayed connection {e.connection_id} closed by {e.closer.value} after {e.age_s:.1f} s"
        case ev.StepTimedOut():
            return f"step {e.step} timed out after {e.timeout_s:g} s"
        case ev.RunInterrupted():
            return "interrupted; writing what was seen"
    return None


class ProgressSink:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream

    def __call__(self, e: ev.Event) -> None:
        text = describe(e)
        if text:
            self._stream.write(f"  {e.t_s:7.2f}s  {text}\n")
            self._stream.flush()
