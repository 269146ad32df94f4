"""What changed between two probes of a target: the one place watch's events are decided.

Pure: no I/O, no clock of its own. `Tracker.observe(obs)` compares a probe's `Observation` with the
last one of the same target and returns the `Change`s it shows, in a fixed order; `reservation(state)`
does the same for the reservation watch holds on a relay. It keeps the last observation of each
target and nothing else, so memory does not grow with time.

A change is named the first time the evidence shows it, so a fault is named at the first probe
that sees it (within one interval of it happening). The first probe of a target reports what is
wrong (a peer down, an address that does not answer) but not what is fine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from p2pdiag.diagnosis.codes import Code
from p2pdiag.watch.model import AddrDial, Module, Observation, ReservationState


class ChangeKind(enum.Enum):
    """Each is a state change of one target; the pairs are down/up of the same thing. A fault's kind is
    the finding code `analyze` of a watch trace gives it (docs/verdicts/<code>.md)."""

    PROBE_FAILED = Code.PROBE_FAILED.value  # a relay, upgrade or gossipsub probe failed
    PROBE_RECOVERED = "probe-recovered"
    RELAY_HOP_WITHDRAWN = Code.RELAY_HOP_WITHDRAWN.value  # identify no longer lists the HOP protocol
    RELAY_HOP_OFFERED = "relay-hop-offered"
    RELAY_LIMITS_CHANGED = Code.RELAY_LIMITS_CHANGED.value  # the Limit a RESERVE announced is not the last one
    RESERVATION_LOST = Code.RESERVATION_LOST.value  # the reservation watch holds went down
    RESERVATION_RESTORED = "reservation-restored"
    PEER_DOWN = Code.PEER_DOWN.value  # no path to the peer completed identify
    PEER_UP = "peer-up"
    PEER_NOT_LISTENING = Code.PEER_NOT_LISTENING.value  # direct dials refused, the peer alive via a relay
    PEER_LISTENING = "peer-listening"
    HANDSHAKE_FAILING = Code.HANDSHAKE_FAILING.value  # connects, but no security handshake
    HANDSHAKE_OK = "handshake-ok"
    ADDRESS_DOWN = Code.ADDRESS_DOWN.value  # one address (direct, or through one relay) stopped answering
    ADDRESS_UP = "address-up"
    ADDRESS_VANISHED = Code.ADDRESS_VANISHED.value  # the peer's identify stopped announcing an address
    ADDRESS_APPEARED = "address-appeared"
    CIRCUIT_ADDRESS_MISSING = Code.CIRCUIT_ADDRESS_MISSING.value  # no /p2p-circuit address announced any more
    CIRCUIT_ADDRESS_BACK = "circuit-address-back"
    AGENT_CHANGED = Code.AGENT_CHANGED.value  # a restart with another version, or another program on the address
    UPGRADE_CHANGED = Code.UPGRADE_CHANGED.value  # the upgrade's outcome or headline cause is not the last one
    CANARY_LOSS = Code.CANARY_LOSS.value  # canaries sent across the mesh did not all arrive
    CANARY_RECOVERED = "canary-recovered"
    SUBSCRIPTION_LOST = Code.SUBSCRIPTION_LOST.value  # a watched node no longer seen subscribed to the topic
    SUBSCRIPTION_SEEN = "subscription-seen"



# each fault and the change that ends it (the same target, module and subject)
RECOVERS = {
    ChangeKind.PROBE_FAILED: ChangeKind.PROBE_RECOVERED,
    ChangeKind.RELAY_HOP_WITHDRAWN: ChangeKind.RELAY_HOP_OFFERED,
    ChangeKind.RESERVATION_LOST: ChangeKind.RESERVATION_RESTORED,
    ChangeKind.PEER_DOWN: ChangeKind.PEER_UP,
    ChangeKind.PEER_NOT_LISTENING: ChangeKind.PEER_LISTENING,
    ChangeKind.HANDSHAKE_FAILING: ChangeKind.HANDSHAKE_OK,
    ChangeKind.ADDRESS_DOWN: ChangeKind.ADDRESS_UP,
    ChangeKind.ADDRESS_VANISHED: ChangeKind.ADDRESS_APPEARED,
    ChangeKind.CIRCUIT_ADDRESS_MISSING: ChangeKind.CIRCUIT_ADDRESS_BACK,
    ChangeKind.CANARY_LOSS: ChangeKind.CANARY_RECOVERED,
    ChangeKind.SUBSCRIPTION_LOST: ChangeKind.SUBSCRIPTION_SEEN,
}


BAD = frozenset(RECOVERS)  # a fault appeared; the other kinds are a fault ending, or news (agent, limits, upgrade)


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    module: Module
    target: str
    at_unix_s: float
    detail: str  # one line for a person: what changed and the evidence
    subject: str | None = None  # the address, relay or peer id the change is about, when not the target itself

    @property
    def bad(self) -> bool:
        return self.kind in BAD


def why(obs: Observation) -> str:
    """Why a probe failed, in one line: where, what kind of failure, the error's own words."""
    if obs.timed_out:
        return f"timed out in {obs.failed_phase or 'the probe'} after {obs.duration_s:.1f} s"
    parts = [p for p in (obs.failed_phase and f"{obs.failed_phase} failed", obs.error_kind, obs.error) if p]
    return ": ".join(parts) if parts else "failed"


def _direct(d: AddrDial) -> bool:
    return d.relay is None and d.tried


def _failure(d: AddrDial) -> str:
    what = d.failed_phase or "dial"
    if d.error:
        return f"{what} failed ({d.error_kind}: {d.error})"
    return f"{what} failed ({d.error_kind})" if d.error_kind else f"{what} failed"


def _dial_key(d: AddrDial) -> str:
    return d.addr if d.relay is None else f"{d.addr} via {d.relay}"


def _limits(obs: Observation) -> tuple[float | None, int | None] | None:
    r = obs.relay
    if r is None or r.reservation_status != "OK":
        return None
    return r.limit_duration_s, r.limit_data_bytes


def _show_limits(limits: tuple[float | None, int | None]) -> str:
    duration, data = limits
    d = "no duration limit" if duration is None else f"{duration:g} s"
    b = "no data limit" if data is None else f"{data} bytes"
    return f"{d}, {b}"


def _refused_everywhere(direct: list[AddrDial]) -> bool:
    """Every direct dial failed before a handshake could start: nothing listens there any more."""
    return bool(direct) and all(not d.ok and not d.reached for d in direct)


def _is_circuit(addr: str) -> bool:
    return "/p2p-circuit" in addr


class Tracker:
    def __init__(self) -> None:
        self._last: dict[tuple[Module, str], Observation] = {}
        self._reservations: dict[str, ReservationState] = {}
        self._down_since: dict[str, float] = {}

    def forget(self, module: Module, target: str) -> None:
        self._last.pop((module, target), None)
        if module is Module.RELAY:
            self._reservations.pop(target, None)
            self._down_since.pop(target, None)

    def observe(self, obs: Observation) -> list[Change]:
        key = (obs.module, obs.target)
        before = self._last.get(key)
        self._last[key] = obs
        out: list[Change] = []

        def change(kind: ChangeKind, detail: str, subject: str | None = None) -> None:
            out.append(Change(kind, obs.module, obs.target, obs.started_unix_s + obs.duration_s, detail, subject))

        if obs.module is Module.PEER:
            self._peer(before, obs, change)
        else:
            self._probe(before, obs, change)
        if obs.module is Module.RELAY:
            self._relay(before, obs, change)
        elif obs.module is Module.UPGRADE:
            self._upgrade(before, obs, change)
        elif obs.module is Module.GOSSIPSUB:
            self._gossip(before, obs, change)
        return out

    def _probe(self, before: Observation | None, obs: Observation, change) -> None:
        if not obs.ok and (before is None or before.ok):
            change(ChangeKind.PROBE_FAILED, why(obs))
        elif obs.ok and before is not None and not before.ok:
            change(ChangeKind.PROBE_RECOVERED, f"the {obs.module.value} probe succeeds again")

    def _relay(self, before: Observation | None, obs: Observation, change) -> None:
        now, was = obs.relay, before.relay if before else None
        if now is None:
            return
        if now.hop_offered is False and (was is None or was.hop_offered is not False):
            change(ChangeKind.RELAY_HOP_WITHDRAWN, "identify does not list /libp2p/circuit/relay/0.2.0/hop: "
                                                   "the node answers but is not a relay (any more)")
        elif now.hop_offered and was is not None and was.hop_offered is False:
            change(ChangeKind.RELAY_HOP_OFFERED, "identify lists the HOP protocol again")
        if was is not None and now.agent and was.agent and now.agent != was.agent:
            change(ChangeKind.AGENT_CHANGED, f"agent {was.agent!r} → {now.agent!r}")
        limits, old = _limits(obs), _limits(before) if before else None
        if limits is not None and old is not None and limits != old:
            change(ChangeKind.RELAY_LIMITS_CHANGED, f"announced limits {_show_limits(old)} → {_show_limits(limits)}")

    def _peer(self, before: Observation | None, obs: Observation, change) -> None:
        now, was = obs.peer, before.peer if before else None
        if now is None:
            return
        old_dials = {_dial_key(d): d for d in was.dials} if was else {}
        alive = now.identified
        if not alive and (before is None or (was is not None and was.identified)):
            change(ChangeKind.PEER_DOWN, "no address, direct or relayed, completed identify: " + why(obs))
        elif alive and was is not None and not was.identified:
            change(ChangeKind.PEER_UP, "identify completes again")

        direct = [d for d in now.dials if _direct(d)]
        relayed_ok = [d for d in now.dials if d.relay is not None and d.ok]
        not_listening = _refused_everywhere(direct) and bool(relayed_ok)
        was_not_listening = was is not None and _refused_everywhere([d for d in was.dials if _direct(d)]) and any(
            d.relay is not None and d.ok for d in was.dials)
        if not_listening and not was_not_listening:
            change(ChangeKind.PEER_NOT_LISTENING,
                   f"{len(direct)} direct address(es) refused or unanswered ({_failure(direct[0])}), yet the peer "
                   f"answers through {relayed_ok[0].relay}: its process lives but it no longer listens")
        elif was_not_listening and direct and any(d.ok for d in direct):
            change(ChangeKind.PEER_LISTENING, "a direct address answers again")

        for d in now.dials:
            if not d.tried:
                continue
            old = old_dials.get(_dial_key(d))
            handshake_failing = d.reached and not d.secured
            if handshake_failing and (old is None or not (old.reached and not old.secured)):
                change(ChangeKind.HANDSHAKE_FAILING, f"{d.addr}: the transport connects but the handshake "
                                                     f"does not complete ({_failure(d)})", _dial_key(d))
            elif old is not None and old.reached and not old.secured and d.secured:
                change(ChangeKind.HANDSHAKE_OK, f"{d.addr}: the handshake completes again", _dial_key(d))
            if not d.ok and (old is None or old.ok) and not handshake_failing:
                change(ChangeKind.ADDRESS_DOWN, f"{_dial_key(d)}: {_failure(d)}", _dial_key(d))
            elif d.ok and old is not None and not old.ok and not (old.reached and not old.secured):
                change(ChangeKind.ADDRESS_UP, f"{_dial_key(d)} answers again", _dial_key(d))

        if was is not None and was.identified and now.identified:
            gone = [a for a in was.listen_addrs if a not in now.listen_addrs]
            new = [a for a in now.listen_addrs if a not in was.listen_addrs]
            had_circuit = any(_is_circuit(a) for a in was.listen_addrs)
            has_circuit = any(_is_circuit(a) for a in now.listen_addrs)
            for a in gone:
                if not _is_circuit(a):
                    change(ChangeKind.ADDRESS_VANISHED, f"identify no longer announces {a}", a)
            for a in new:
                if not _is_circuit(a):
                    change(ChangeKind.ADDRESS_APPEARED, f"identify announces {a}", a)
            if had_circuit and not has_circuit:
                change(ChangeKind.CIRCUIT_ADDRESS_MISSING,
                       f"identify announces no /p2p-circuit address any more (had {sum(map(_is_circuit, gone))}): "
                       "the peer holds no reservation, so no one can reach it through a relay")
            elif has_circuit and not had_circuit:
                change(ChangeKind.CIRCUIT_ADDRESS_BACK, "identify announces a /p2p-circuit address again")
            if now.agent and was.agent and now.agent != was.agent:
                change(ChangeKind.AGENT_CHANGED, f"agent {was.agent!r} → {now.agent!r}")

    def _upgrade(self, before: Observation | None, obs: Observation, change) -> None:
        now, was = obs.upgrade, before.upgrade if before else None
        if now is None or was is None:
            return
        head, old_head = now.causes[:1], was.causes[:1]
        if (now.outcome, head) != (was.outcome, old_head):
            change(ChangeKind.UPGRADE_CHANGED, f"{was.outcome} ({', '.join(old_head) or 'no finding'}) → "
                                               f"{now.outcome} ({', '.join(head) or 'no finding'})")

    def _gossip(self, before: Observation | None, obs: Observation, change) -> None:
        now, was = obs.gossip, before.gossip if before else None
        if now is None:
            return
        lost = now.sent - now.delivered
        was_lost = was is not None and was.sent - was.delivered > 0
        if lost and not was_lost:
            change(ChangeKind.CANARY_LOSS, f"{lost} of {now.sent} canaries did not cross the mesh within the "
                                           "probe's timeout")
        elif not lost and now.sent and was_lost:
            change(ChangeKind.CANARY_RECOVERED, f"all {now.sent} canaries crossed the mesh again")
        for peer_id, seen in now.subscribed.items():
            before_seen = was.subscribed.get(peer_id) if was is not None else None
            if not seen and before_seen is not False:
                change(ChangeKind.SUBSCRIPTION_LOST, f"{peer_id} is not seen subscribed to the topic", peer_id)
            elif seen and before_seen is False:
                change(ChangeKind.SUBSCRIPTION_SEEN, f"{peer_id} is subscribed to the topic again", peer_id)

    def reservation(self, state: ReservationState) -> list[Change]:
        before = self._reservations.get(state.target)
        self._reservations[state.target] = state
        if not state.up and (before is None or before.up):
            self._down_since[state.target] = state.at_unix_s
            why = ": ".join(p for p in (state.error_kind, state.error) if p) or "lost"
            return [Change(ChangeKind.RESERVATION_LOST, Module.RELAY, state.target, state.at_unix_s,
                           f"the reservation watch holds on this relay is down ({why})")]
        if state.up and before is not None and not before.up:
            since = self._down_since.pop(state.target, before.at_unix_s)
            return [Change(ChangeKind.RESERVATION_RESTORED, Module.RELAY, state.target, state.at_unix_s,
                           f"reserved again after {state.at_unix_s - since:.0f} s without a reservation")]
        return []
