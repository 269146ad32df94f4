"""What an upgrade attempt is configured with: ICE servers and policy, and a timeout per step.

Plain values, no network code; `upgrade` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pdiag.trace.events import IcePolicy


@dataclass(frozen=True, slots=True)
class TurnServer:
    url: str  # turn:HOST:PORT[?transport=udp|tcp] or turns:...
    username: str
    credential: str

    def __repr__(self) -> str:  # never print the credential
        return f"TurnServer(url={self.url!r}, username={self.username!r}, credential='***')"


@dataclass(frozen=True, slots=True)
class IceConfig:
    """ICE servers are only those given: with none, aiortc would fall back to a public STUN server.

    Every STUN server is asked from each host socket (`ice.bound_gathering`; aioice alone would ask
    only the first); only the first TURN server is used. `loopback` adds a 127.0.0.1 host
    candidate, which aioice leaves out: without it a loopback-only network (or a peer bound to
    127.0.0.1, as the js reference peers are) has no pair to check.
    """

    stun: tuple[str, ...] = ()
    turn: tuple[TurnServer, ...] = ()
    policy: str = "all"  # "all" | "relay"
    loopback: bool = True
    # Host candidates only on these local addresses (None: every interface, as aioice does). The
    # demo and the tests on this machine's own namespace use () so that, with `loopback`, ICE
    # stays on 127.0.0.1.
    host_addresses: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.policy not in ("all", "relay"):
            raise ValueError(f"ICE transport policy must be 'all' or 'relay', not {self.policy!r}")
        for url in self.stun:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"a STUN server URL starts with stun: ({url!r})")
        for server in self.turn:
            if not server.url.startswith(("turn:", "turns:")):
                raise ValueError(f"a TURN server URL starts with turn: or turns: ({server.url!r})")

    @property
    def ice_policy(self) -> IcePolicy:
        return IcePolicy(self.policy)

    def as_dict(self) -> dict[str, object]:
        """For the trace header: no credentials."""
        return {"stun": list(self.stun), "turn": [t.url for t in self.turn], "policy": self.policy,
                "loopback": self.loopback,
                "host_addresses": None if self.host_addresses is None else list(self.host_addresses)}


@dataclass(frozen=True, slots=True)
class UpgradeTimeouts:
    """One budget per step of the upgrade, in seconds.

    `ice` stays well under js-libp2p's 6 s per-address dial timeout, so p2pdiag gives its verdict
    before a js dialer would give up. aioice retransmits a STUN check `stun_retransmits` times,
    waiting `stun_rto` and doubling; 0.1 s and 3 give up on a blocked check after 1.5 s (requests
    at 0, 0.1, 0.3 and 0.7 s: an answer within a 0.8 s round trip still counts), well inside the ICE
    budget, so when nothing gets through every pair ends FAILED and ICE fails at once instead of
    waiting out `ice` (aioice's defaults, 0.5 s and 6, take 63.5 s).

    `stun` and `turn` bound gathering: a STUN server (through any NAT) answers within one round
    trip, so no answer in `stun` seconds means none is coming, and gathering goes on without that
    srflx candidate instead of waiting aioice's fixed 5 s. A TURN allocation takes two exchanges
    (the 401 challenge, then the authenticated request). The lab uses shorter ones.
    """

    signaling: float = 10.0  # open the signaling stream; then wait for the offer or the answer
    gathering: float = 5.0  # gather local candidates, all of it (the STUN and TURN bounds are inside it)
    stun: float = 2.0  # one STUN binding while gathering: no answer by then ends the wait for it
    turn: float = 3.0  # one TURN allocation while gathering
    ice: float = 4.0  # connectivity checks until a pair is nominated
    dtls: float = 5.0  # DTLS handshake after ICE
    channel: float = 5.0  # SCTP association and the first data channel after DTLS
    stun_rto: float = 0.1
    stun_retransmits: int = 3
