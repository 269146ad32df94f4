"""What a lab looks like: value types only, no I/O.

The shape is fixed: one public network (a bridge) with the relay host and the STUN/TURN host, and
two LANs, ``a`` and ``b``, each with one host behind its own router. What varies per router is how
it translates and filters (RFC 4787 terms), which UDP it lets out, and how bad its links are.

Addresses come from ranges reserved for documentation and testing, so they cannot be mistaken for
anything real: the public network is TEST-NET-3 (203.0.113.0/24, RFC 5737) and the LANs are in the
benchmarking range 198.18.0.0/15 (RFC 2544). The host machine here uses TEST-NET-1 (192.0.2.0/24)
for itself, so that one is avoided. Nothing of the lab is connected to the host's network anyway.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NatMode(StrEnum):
    """How a router maps a LAN host's (address, port) to its WAN side (RFC 4787 section 4.1)."""

    NONE = "none"  # plain routing: the LAN's addresses are reachable from the public network
    CONE = "cone"  # endpoint-independent mapping: nft masquerade, which keeps the source port
    SYMMETRIC = "symmetric"  # address-and-port-dependent mapping: masquerade fully-random
    FULL_CONE = "full-cone"  # endpoint-independent mapping and endpoint-independent filtering


class Filtering(StrEnum):
    """Which unsolicited inbound packets a router lets through to a mapping (RFC 4787 section 5)."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


class UdpPolicy(StrEnum):
    """Which UDP a router forwards at all, whatever its NAT does."""

    OPEN = "open"
    BLOCKED = "blocked"  # every UDP packet through the router is dropped (TCP still works)
    STUN_ONLY = "stun-only"  # only UDP to/from the lab's STUN port (the STUN server's main port)


# What a NAT mode gives when no filtering is asked for. Linux conntrack only lets replies from the
# exact (address, port) a mapping was made for, so a masquerading router is a "port-restricted
# cone"; endpoint-independent or address-dependent filtering needs extra rules (see netns.py).
DEFAULT_FILTERING = {
    NatMode.NONE: Filtering.ENDPOINT_INDEPENDENT,
    NatMode.CONE: Filtering.ADDRESS_AND_PORT_DEPENDENT,
    NatMode.SYMMETRIC: Filtering.ADDRESS_AND_PORT_DEPENDENT,
    NatMode.FULL_CONE: Filtering.ENDPOINT_INDEPENDENT,
}


@dataclass(frozen=True, slots=True)
class Impairment:
    """A router's bad links: each direction through the router gets it once.

    A round trip from the LAN host to the public network gets ``2 * delay_ms`` more, each way
    ± ``jitter_ms`` (a delay line on the LAN link, delayline.py: no netem needed), and each packet
    through the router is dropped with ``loss_percent`` (an nftables rule, in steps of 0.1 %).
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_percent: float = 0.0

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0 or not 0 <= self.loss_percent <= 100:
            raise ValueError(f"impairment out of range: {self}")
        if self.jitter_ms and not self.delay_ms:
            raise ValueError("jitter_ms needs a delay_ms")


@dataclass(frozen=True, slots=True)
class Router:
    """One LAN's router. ``filtering=None`` means what ``nat`` gives by itself (DEFAULT_FILTERING)."""

    nat: NatMode = NatMode.CONE
    filtering: Filtering | None = None
    udp: UdpPolicy = UdpPolicy.OPEN
    impairment: Impairment = field(default_factory=Impairment)

    def __post_init__(self) -> None:
        # accept the strings a scenario file holds
        object.__setattr__(self, "nat", NatMode(self.nat))
        if self.filtering is not None:
            object.__setattr__(self, "filtering", Filtering(self.filtering))
        object.__setattr__(self, "udp", UdpPolicy(self.udp))
        eff = self.effective_filtering
        if self.nat is NatMode.FULL_CONE and eff is not Filtering.ENDPOINT_INDEPENDENT:
            raise ValueError("a full-cone NAT filters endpoint-independently by definition; "
                             "use nat='cone' with that filtering instead")
        if self.nat is NatMode.SYMMETRIC and eff is not Filtering.ADDRESS_AND_PORT_DEPENDENT:
            # Opening a symmetric mapping to other senders would need the mapped port, which only
            # conntrack knows; the lab's rules forward unsolicited UDP to the same port number.
            raise ValueError("the lab's symmetric NAT filters address-and-port-dependently only")

    @property
    def effective_filtering(self) -> Filtering:
        return self.filtering if self.filtering is not None else DEFAULT_FILTERING[self.nat]

    @property
    def keeps_port(self) -> bool:
        """Whether the mapped port equals the LAN host's port (masquerade without fully-random)."""
        return self.nat in (NatMode.CONE, NatMode.FULL_CONE)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nat": str(self.nat), "udp": str(self.udp)}
        if self.filtering is not None:
            out["filtering"] = str(self.filtering)
        out.update({k: v for k, v in dataclasses.asdict(self.impairment).items() if v})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Router:
        """From a scenario file's mapping: ``{"nat": "cone", "udp": "blocked", "delay_ms": 20}``."""
        known = {"nat", "filtering", "udp", *(f.name for f in dataclasses.fields(Impairment))}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown router settings {sorted(unknown)}; known: {sorted(known)}")
        imp = {k: float(data[k]) for k in data if k in {f.name for f in dataclasses.fields(Impairment)}}
        return cls(nat=data.get("nat", NatMode.CONE), filtering=data.get("filtering"),
                   udp=data.get("udp", UdpPolicy.OPEN), impairment=Impairment(**imp))


# Host names, used by Lab.exec / Lab.address and in namespace names.
RELAY = "relay"
STUN = "stun"
LAN_NAMES = ("a", "b")


def router_name(lan: str) -> str:
    return f"router-{lan}"


@dataclass(frozen=True, slots=True)
class Topology:
    """The whole lab. Routers ``a`` and ``b`` sit in front of hosts ``a`` and ``b``."""

    a: Router = field(default_factory=Router)
    b: Router = field(default_factory=Router)
    public_subnet: str = "203.0.113.0/24"
    lan_subnets: tuple[str, str] = ("198.18.1.0/24", "198.18.2.0/24")
    stun_port: int = 3478
    stun_alt_port: int = 3479  # RFC 5780 OTHER-ADDRESS is (second IP, this port)
    turn_relay_ports: tuple[int, int] = (49152, 49407)
    turn_user: str = "p2pdiag"
    turn_password: str = "p2pdiag-lab"
    turn_realm: str = "p2pdiag.lab"
    # Peer address ranges coturn refuses to relay to (its denied-peer-ip), as CIDRs: a real-world
    # misconfiguration, e.g. a deny list that covers the range the peers' public addresses are in.
    turn_denied_peers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in LAN_NAMES:
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, Router.from_dict(value))
        object.__setattr__(self, "lan_subnets", tuple(self.lan_subnets))
        object.__setattr__(self, "turn_relay_ports", tuple(self.turn_relay_ports))
        object.__setattr__(self, "turn_denied_peers", tuple(self.turn_denied_peers))
        for cidr in self.turn_denied_peers:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError as e:
                raise ValueError(f"turn_denied_peers: {cidr!r} is not an IPv4 network ({e})") from None
        nets = [ipaddress.IPv4Network(s) for s in (self.public_subnet, *self.lan_subnets)]
        if len(self.lan_subnets) != len(LAN_NAMES):
            raise ValueError(f"need {len(LAN_NAMES)} LAN subnets, got {self.lan_subnets}")
        for i, n in enumerate(nets):
            if n.prefixlen > 28:
                raise ValueError(f"subnet {n} is too small for the lab's fixed host numbers")
            for m in nets[i + 1:]:
                if n.overlaps(m):
                    raise ValueError(f"lab subnets overlap: {n} and {m}")
        if self.stun_port == self.stun_alt_port:
            raise ValueError("stun_alt_port must differ from stun_port (RFC 5780 needs both)")

    def router(self, lan: str) -> Router:
        if lan not in LAN_NAMES:
            raise KeyError(f"no LAN {lan!r}; LANs are {LAN_NAMES}")
        return getattr(self, lan)

    def with_router(self, lan: str, router: Router) -> Topology:
        self.router(lan)
        return dataclasses.replace(self, **{lan: router})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update({lan: self.router(lan).to_dict() for lan in LAN_NAMES})
        out["lan_subnets"] = list(self.lan_subnets)
        out["turn_relay_ports"] = list(self.turn_relay_ports)
        out["turn_denied_peers"] = list(self.turn_denied_peers)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Topology:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown topology settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)

    # --- addresses: fixed host numbers inside each subnet ---

    def _public(self, n: int) -> str:
        return str(ipaddress.IPv4Network(self.public_subnet)[n])

    @property
    def public_prefix(self) -> int:
        return ipaddress.IPv4Network(self.public_subnet).prefixlen

    @property
    def relay_ip(self) -> str:
        return self._public(10)

    @property
    def stun_ip(self) -> str:
        return self._public(3)

    @property
    def stun_alt_ip(self) -> str:
        return self._public(4)

    def router_wan_ip(self, lan: str) -> str:
        return self._public(1 + LAN_NAMES.index(lan))  # .1, .2: low numbers, like ISP gateways

    def lan_subnet(self, lan: str) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.lan_subnets[LAN_NAMES.index(lan)])

    def router_lan_ip(self, lan: str) -> str:
        return str(self.lan_subnet(lan)[1])

    def host_ip(self, lan: str) -> str:
        return str(self.lan_subnet(lan)[10])

    def hosts(self) -> dict[str, str]:
        """Every host name and its (first) address; routers give their WAN address."""
        out = {RELAY: self.relay_ip, STUN: self.stun_ip}
        for lan in LAN_NAMES:
            out[router_name(lan)] = self.router_wan_ip(lan)
            out[lan] = self.host_ip(lan)
        return out
