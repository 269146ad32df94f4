"""The finding for a dialer that keeps coming back through the relay after each failed round."""

from __future__ import annotations

from p2pdiag.diagnosis.codes import Code
from p2pdiag.diagnosis.model import Confidence, Finding, Severity


def reconnect_loop(rounds: int, period_s: float, evidence: tuple[str, ...], relay_cut_some: bool,
                   confidence: Confidence) -> Finding:
    """`relay_cut_some`: the relay ended some of the rounds before a return."""
    advice = ("The dialer's app redials after every failed round, so it never settles: each round costs a "
              "circuit on the relay and counts against its limits, and the WebRTC upgrade fails the same "
              "way each time (the upgrade's own findings say why). In the app: keep the relayed connection "
              "open when the upgrade fails (do not hang up; @libp2p/webrtc 5.2.21 and later no longer close "
              "it, js-libp2p #3015), retry the upgrade with a growing backoff instead of a fixed period, and "
              "stop after a few tries. When the network is the cause (UDP blocked, symmetric NATs), a TURN "
              "server on both sides is what lets the upgrade succeed.")
    if relay_cut_some:
        advice += (" Some rounds were ended by the relay: a relay's duration or data limit also ends every "
                   "round it allows; use a relay with larger limits, or keep the relayed traffic small.")
    return Finding(
        code=Code.RECONNECT_LOOP,
        severity=Severity.WARNING,
        title=f"The dialer came back through the relay {rounds - 1} times after failed rounds: a reconnect loop "
        f"of {rounds} rounds, one every {period_s:.1f} s",
        evidence=evidence,
        advice=advice,
        confidence=confidence,
        settle=None if confidence is Confidence.CERTAIN else
        "the dialer's log for the same moments: why it hung up, and what made it dial again",
    )
