"""What changed in a target: the one place watch's events are decided.

Pure: no I/O, no clock of its own. `Tracker.observe(obs)` compares a probe's `Observation` with what
the tracker remembers of the target and returns the `Change`s it shows, in a fixed order;
`reservation(state)` does the same for the reservation watch holds on a relay.

What it remembers is a state per *slot*: the peer as a whole (up, not listening, down), each path
to it (ok, down, handshake failing, cut by its relay), the addresses it announced, the circuit
address, the probe's success, the relay's HOP and reservation, the canaries, each watched
subscription. A slot holds one state at a time, so a fault ends when its slot leaves it, whatever it
goes to (a handshake failure that becomes a refused address ends and the address-down begins),
and `analyze` pairs them by slot (`SLOT`). Facts compared across probes (announced addresses,
agent, limits) are compared with the last probe that had them, so a restart that took longer than
one interval is still seen. Memory: a few values per target and per path, never per probe.

A change is named at the first probe that shows it (within one interval of it happening). The
first probe of a target reports what is wrong (a peer down, an address that does not answer), not
what is fine. A probe without the module's facts (cut by the scheduler) changes no slot but the
probe's own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from p2pdiag.diagnosis.codes import Code
from p2pdiag.watch.model import AddrDial, Module, Observation, ReservationState


class ChangeKind(enum.Enum):
    """A state change of one slot of one target. A fault's kind is the finding code `analyze` of a
    watch trace gives it (docs/verdicts/<code>.md); the others end a fault, or are news."""

    PROBE_FAILED = Code.PROBE_FAILED.value  # a relay, upgrade or gossipsub probe failed
    PROBE_RECOVERED = "probe-recovered"
    RELAY_HOP_WITHDRAWN = Code.RELAY_HOP_WITHDRAWN.value  # identify does not list the HOP protocol
    RELAY_HOP_OFFERED = "relay-hop-offered"
    RESERVATION_LOST = Code.RESERVATION_LOST.value  # the reservation watch holds went down
    RESERVATION_RESTORED = "reservation-restored"
    PEER_DOWN = Code.PEER_DOWN.value  # no path to the peer completed identify
    PEER_NOT_LISTENING = Code.PEER_NOT_LISTENING.value  # direct dials refused, the peer alive via a relay
    PEER_UP = "peer-up"  # ends either
    ADDRESS_DOWN = Code.ADDRESS_DOWN.value  # one path (an address, or the peer through one relay) failed
    HANDSHAKE_FAILING = Code.HANDSHAKE_FAILING.value  # connects, but no security handshake
    RELAY_CUT_DURATION = Code.RELAY_CUT_DURATION.value  # a held circuit cut at the relay's duration limit
    RELAY_CUT_DATA = Code.RELAY_CUT_DATA.value  # ...at its data limit
    RELAY_CUT_UNEXPLAINED = Code.RELAY_CUT_UNEXPLAINED.value  # ...by the relay, neither limit explaining it
    PATH_OK = "path-ok"  # ends any of the path's faults
    PATH_DROPPED = "path-dropped"  # the path is no longer dialed (no longer announced): its fault ends unjudged
    ADDRESS_VANISHED = Code.ADDRESS_VANISHED.value  # identify stopped announcing an address
    ADDRESS_APPEARED = "address-appeared"
    CIRCUIT_ADDRESS_MISSING = Code.CIRCUIT_ADDRESS_MISSING.value  # no /p2p-circuit address announced any more
    CIRCUIT_ADDRESS_BACK = "circuit-address-back"
    CANARY_LOSS = Code.CANARY_LOSS.value  # canaries sent across the mesh did not all arrive
    CANARY_RECOVERED = "canary-recovered"
    SUBSCRIPTION_LOST = Code.SUBSCRIPTION_LOST.value  # a watched node not seen subscribed to the topic
    SUBSCRIPTION_SEEN = "subscription-seen"
    AGENT_CHANGED = Code.AGENT_CHANGED.value  # news: a restart with another version, or another program
    RELAY_LIMITS_CHANGED = Code.RELAY_LIMITS_CHANGED.value  # news: the announced Limit differs
    UPGRADE_CHANGED = Code.UPGRADE_CHANGED.value  # news: the upgrade's outcome or headline cause differs
    WATCH_STARVED = Code.WATCH_STARVED.value  # news: p2pdiag itself was held while a probe timed out


K = ChangeKind
# the slot each kind belongs to: a fault in a slot ends when another change of the same slot (same
# target and subject) comes. News kinds have no slot.
SLOT: dict[ChangeKind, str] = {
    K.PROBE_FAILED: "probe", K.PROBE_RECOVERED: "probe",
    K.RELAY_HOP_WITHDRAWN: "hop", K.RELAY_HOP_OFFERED: "hop",
    K.RESERVATION_LOST: "reservation", K.RESERVATION_RESTORED: "reservation",
    K.PEER_DOWN: "peer", K.PEER_NOT_LISTENING: "peer", K.PEER_UP: "peer",
    K.ADDRESS_DOWN: "path", K.HANDSHAKE_FAILING: "path", K.RELAY_CUT_DURATION: "path", K.RELAY_CUT_DATA: "path",
    K.RELAY_CUT_UNEXPLAINED: "path", K.PATH_OK: "path", K.PATH_DROPPED: "path",
    K.ADDRESS_VANISHED: "announced", K.ADDRESS_APPEARED: "announced",
    K.CIRCUIT_ADDRESS_MISSING: "circuit", K.CIRCUIT_ADDRESS_BACK: "circuit",
    K.CANARY_LOSS: "canary", K.CANARY_RECOVERED: "canary",
    K.SUBSCRIPTION_LOST: "subscription", K.SUBSCRIPTION_SEEN: "subscription",
}
BAD = frozenset({
    K.PROBE_FAILED, K.RELAY_HOP_WITHDRAWN, K.RESERVATION_LOST, K.PEER_DOWN, K.PEER_NOT_LISTENING, K.ADDRESS_DOWN,
    K.HANDSHAKE_FAILING, K.RELAY_CUT_DURATION, K.RELAY_CUT_DATA, K.RELAY_CUT_UNEXPLAINED, K.ADDRESS_VANISHED,
    K.CIRCUIT_ADDRESS_MISSING, K.CANARY_LOSS, K.SUBSCRIPTION_LOST,
})
NEWS = frozenset(set(ChangeKind) - set(SLOT))
CUTS = {"duration": K.RELAY_CUT_DURATION, "data": K.RELAY_CUT_DATA, "unexplained": K.RELAY_CUT_UNEXPLAINED}


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    module: Module
    target: str
    at_unix_s: float
    detail: str  # one line for a person: what changed and the evidence
    subject: str | None = None  # the address, path or peer id it is about, when not the target itself

    @property
    def bad(self) -> bool:
        return self.kind in BAD


def why(obs: Observation) -> str:
    """Why a probe failed, in one line: where, what kind of failure, the error's own words."""
    if obs.timed_out:
        return f"timed out in {obs.failed_phase or 'the probe'} after {obs.duration_s:.1f} s"
    parts = [p for p in (obs.failed_phase and f"{obs.failed_phase} failed", obs.error_kind, obs.error) if p]
    return ": ".join(parts) if parts else "failed"


def _failure(d: AddrDial) -> str:
    what = d.failed_phase or "dial"
    if d.error:
        return f"{what} failed ({d.error_kind}: {d.error})"
    return f"{what} failed ({d.error_kind})" if d.error_kind else f"{what} failed"


def path_key(d: AddrDial) -> str:
    return d.addr if d.relay is None else f"{d.addr} via {d.relay}"


def _path_state(d: AddrDial) -> tuple[ChangeKind, str]:
    """A path's state as the kind that names it, and the evidence."""
    if d.ok and d.cut is not None:
        age = f" after {d.cut_after_s:.1f} s" if d.cut_after_s is not None else ""
        return CUTS.get(d.cut, K.RELAY_CUT_UNEXPLAINED), f"{path_key(d)}: the relay cut the circuit{age} ({d.cut})"
    if d.ok:
        return K.PATH_OK, f"{path_key(d)} answers"
    if d.reached and not d.secured:
        return K.HANDSHAKE_FAILING, (f"{d.addr}: the transport connects but the handshake does not complete "
                                     f"({_failure(d)})")
    return K.ADDRESS_DOWN, f"{path_key(d)}: {_failure(d)}"


def _path_cause(d: AddrDial) -> str | None:
    """What a failing path's fault is named again for: the phase it fails in, and the relay's answer to
    HOP CONNECT (a relay that was down, then answers NO_RESERVATION: the node never reserved again).
    Not the error's kind, which may alternate (closed, reset) from one probe to the next."""
    if d.ok:
        return None
    status = d.error_kind if d.failed_phase == "hop" and d.error_kind and d.error_kind.isupper() else None
    return f"{d.failed_phase or 'dial'}:{status or ''}"


def _show_limits(limits: tuple[float | None, int | None]) -> str:
    duration, data = limits
    d = "no duration limit" if duration is None else f"{duration:g} s"
    b = "no data limit" if data is None else f"{data} bytes"
    return f"{d}, {b}"


def _is_circuit(addr: str) -> bool:
    return "/p2p-circuit" in addr


@dataclass(slots=True)
class _State:
    """What the tracker remembers of one target."""

    slots: dict[tuple[str, str | None], ChangeKind] = field(default_factory=dict)  # (slot, subject) -> state
    causes: dict[tuple[str, str | None], str] = field(default_factory=dict)  # a bad state's cause, where it has one
    listen_addrs: tuple[str, ...] | None = None  # the last identify that answered
    agent: str | None = None
    limits: tuple[float | None, int | None] | None = None
    upgrade: tuple[str, tuple[str, ...]] | None = None
    down_since: float | None = None  # the reservation's
    starved: bool = False  # the last probe was starved (named once until a probe is not)


class Tracker:
    def __init__(self) -> None:
        self._state: dict[tuple[Module, str], _State] = {}

    def forget(self, module: Module, target: str) -> None:
        self._state.pop((module, target), None)

    def observe(self, obs: Observation) -> list[Change]:
        state = self._state.setdefault((obs.module, obs.target), _State())
        out: list[Change] = []
        at = obs.started_unix_s + obs.duration_s

        def enter(slot: str, kind: ChangeKind, detail: str, subject: str | None = None, end: ChangeKind | None = None,
                  end_detail: str = "", cause: str | None = None) -> None:
            """SLOT (of SUBJECT) is now KIND. A bad kind is named when the slot was not in it already, or
            was for another CAUSE; a good one (END, with END_DETAIL) only when it ends a fault."""
            before = state.slots.get((slot, subject))
            before_cause = state.causes.pop((slot, subject), None)
            state.slots[(slot, subject)] = kind
            if kind in BAD:
                if cause is not None:
                    state.causes[(slot, subject)] = cause
                if before != kind or cause != before_cause:
                    out.append(Change(kind, obs.module, obs.target, at, detail, subject))
            elif before in BAD:
                out.append(Change(end or kind, obs.module, obs.target, at, end_detail or detail, subject))

        def news(kind: ChangeKind, detail: str) -> None:
            out.append(Change(kind, obs.module, obs.target, at, detail))

        if obs.starved_s is not None:  # says nothing of the target: no state changes, news once
            if not state.starved:
                news(K.WATCH_STARVED, f"{why(obs)}; p2pdiag was held {obs.starved_s:.1f} s of this probe's "
                                      f"{obs.duration_s:.1f} s, so it counts for no target")
            state.starved = True
            return out
        state.starved = False
        if obs.module is not Module.PEER:
            enter("probe", K.PROBE_RECOVERED if obs.ok else K.PROBE_FAILED,
                  f"the {obs.module.value} probe succeeds again" if obs.ok else why(obs))
        if obs.relay is not None:
            r = obs.relay
            if r.hop_offered is not None:
                enter("hop", K.RELAY_HOP_OFFERED if r.hop_offered else K.RELAY_HOP_WITHDRAWN,
                      "identify lists the HOP protocol again" if r.hop_offered else
                      "identify does not list /libp2p/circuit/relay/0.2.0/hop: the node answers but is not a relay")
            if r.agent:
                if state.agent and r.agent != state.agent:
                    news(K.AGENT_CHANGED, f"agent {state.agent!r} → {r.agent!r}")
                state.agent = r.agent
            if r.reservation_status == "OK":
                limits = (r.limit_duration_s, r.limit_data_bytes)
                if state.limits is not None and limits != state.limits:
                    news(K.RELAY_LIMITS_CHANGED,
                         f"announced limits {_show_limits(state.limits)} → {_show_limits(limits)}")
                state.limits = limits
        if obs.peer is not None:
            self._peer(state, obs, enter, news)
        if obs.upgrade is not None:
            u = obs.upgrade
            now = (u.outcome, u.causes[:1])
            if state.upgrade is not None and now != state.upgrade:
                was = state.upgrade
                news(K.UPGRADE_CHANGED, f"{was[0]} ({', '.join(was[1]) or 'no finding'}) → "
                                        f"{now[0]} ({', '.join(now[1]) or 'no finding'})")
            state.upgrade = now
        if obs.gossip is not None:
            g = obs.gossip
            lost = g.sent - g.delivered
            if g.sent:
                enter("canary", K.CANARY_LOSS if lost else K.CANARY_RECOVERED,
                      f"{lost} of {g.sent} canaries did not cross the mesh within the probe's timeout" if lost
                      else f"all {g.sent} canaries crossed the mesh again")
            for peer_id, seen in g.subscribed.items():
                enter("subscription", K.SUBSCRIPTION_SEEN if seen else K.SUBSCRIPTION_LOST,
                      f"{peer_id} is subscribed to the topic again" if seen
                      else f"{peer_id} is not seen subscribed to the topic", peer_id)
        return out

    def _peer(self, state: _State, obs: Observation, enter, news) -> None:
        p = obs.peer
        assert p is not None
        dials = [d for d in p.dials if d.tried]
        direct = [d for d in dials if d.relay is None]
        relayed_ok = [d for d in dials if d.relay is not None and d.ok]
        if not p.identified:
            enter("peer", K.PEER_DOWN, "no address, direct or relayed, completed identify: " + why(obs))
        elif direct and all(not d.ok and not d.reached for d in direct) and relayed_ok:
            enter("peer", K.PEER_NOT_LISTENING,
                  f"{len(direct)} direct address(es) refused or unanswered ({_failure(direct[0])}), yet the peer "
                  f"answers through {relayed_ok[0].relay}: its process lives but it no longer listens")
        else:
            enter("peer", K.PEER_UP, "the peer answers, and listens, again")

        dialed = set()
        for d in dials:
            key = path_key(d)
            dialed.add(key)
            kind, detail = _path_state(d)
            enter("path", kind, detail, key, cause=_path_cause(d))
        for slot, subject in [k for k in state.slots if k[0] == "path" and k[1] not in dialed]:
            enter("path", K.PATH_DROPPED, f"{subject} is no longer dialed: the peer no longer announces it",
                  subject)
            del state.slots[(slot, subject)]
            state.causes.pop((slot, subject), None)

        if p.identified:
            was = state.listen_addrs
            if was is not None:
                for a in was:
                    if a not in p.listen_addrs and not _is_circuit(a):
                        enter("announced", K.ADDRESS_VANISHED, f"identify no longer announces {a}", a)
                for a in p.listen_addrs:
                    if not _is_circuit(a):
                        enter("announced", K.ADDRESS_APPEARED, f"identify announces {a} again", a)
                had = any(_is_circuit(a) for a in was)
                has = any(_is_circuit(a) for a in p.listen_addrs)
                if had and not has:
                    enter("circuit", K.CIRCUIT_ADDRESS_MISSING,
                          "identify announces no /p2p-circuit address any more: the peer holds no reservation, "
                          "so no one can reach it through a relay")
                elif has:
                    enter("circuit", K.CIRCUIT_ADDRESS_BACK, "identify announces a /p2p-circuit address again")
            for key in [k for k, v in state.slots.items() if k[0] == "announced" and v not in BAD
                        and k[1] not in p.listen_addrs]:
                del state.slots[key]  # announced once, gone without a fault: nothing left to judge
            # the addresses it announced before stay the reference while a vanished one is missing
            state.listen_addrs = tuple(dict.fromkeys((*p.listen_addrs, *(
                a for a in (was or ()) if state.slots.get(("announced", a)) is K.ADDRESS_VANISHED
                or (_is_circuit(a) and state.slots.get(("circuit", None)) is K.CIRCUIT_ADDRESS_MISSING)))))
            if p.agent:
                if state.agent and p.agent != state.agent:
                    news(K.AGENT_CHANGED, f"agent {state.agent!r} → {p.agent!r}")
                state.agent = p.agent

    def reservation(self, res: ReservationState) -> list[Change]:
        state = self._state.setdefault((Module.RELAY, res.target), _State())
        before = state.slots.get(("reservation", None))
        if not res.up:
            state.slots[("reservation", None)] = K.RESERVATION_LOST
            if before is not K.RESERVATION_LOST:
                state.down_since = res.at_unix_s
                why_down = ": ".join(p for p in (res.error_kind, res.error) if p) or "lost"
                return [Change(K.RESERVATION_LOST, Module.RELAY, res.target, res.at_unix_s,
                               f"the reservation watch holds on this relay is down ({why_down})")]
            return []
        state.slots[("reservation", None)] = K.RESERVATION_RESTORED
        if before is K.RESERVATION_LOST:
            since = state.down_since if state.down_since is not None else res.at_unix_s
            return [Change(K.RESERVATION_RESTORED, Module.RELAY, res.target, res.at_unix_s,
                           f"reserved again after {res.at_unix_s - since:.0f} s without a reservation")]
        return []
