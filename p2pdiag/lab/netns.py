"""A topology as the list of ``ip``/``sysctl``/``nft`` commands that build it. No I/O here.

runner.py runs these lists; tests/unit/test_lab_commands.py reads them without root.

Layout (every name below lives inside a namespace the lab made; the host namespace gets nothing)::

    ns <prefix>net      bridge br0, one port per public host, named after the host
    ns <prefix>relay    eth0  203.0.113.10
    ns <prefix>stun     eth0  203.0.113.3 and 203.0.113.4 (RFC 5780 needs two addresses),
                        default dev inet0 (a link to nowhere: see UPSTREAM_IF)
    ns <prefix>router-a wan0  203.0.113.1    lan0 198.18.1.1   nft table ip lab
    ns <prefix>a        eth0  198.18.1.10, default via 198.18.1.1
    (and the same for b)

A router with ``delay_ms`` has a third namespace on its LAN link, ``<prefix>delay-a``, with no
address: eth0 of ``a`` is then paired with its ``tohost`` and lan0 of ``router-a`` with its
``torouter``, and delayline.py forwards frames between the two (runner.py starts it). Without delay
the LAN link is one veth, as it always was.

Each veth pair is created with both ends already in their namespaces (``ip -n NS link add ...
peer name ... netns OTHER``), so no interface ever appears in the host namespace, and two labs
never race for an interface name there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from p2pdiag.lab.topology import (
    LAN_NAMES,
    RELAY,
    STUN,
    Filtering,
    NatMode,
    Router,
    Topology,
    UdpPolicy,
    router_name,
)

NAME_PREFIX = "p2pdiag-"
SWITCH = "net"  # the namespace holding the public network's bridge; not a host
LAB_ID_RE = re.compile(r"^[0-9a-f]{8}$")
NAMESPACE_RE = re.compile(rf"^{NAME_PREFIX}([0-9a-f]{{8}})-([a-z0-9-]+)$")

WAN_IF = "wan0"
LAN_IF = "lan0"
HOST_IF = "eth0"
BRIDGE = "br0"
# The STUN/TURN host's default route: one end of a veth pair whose other end (UPSTREAM_PEER_IF, up,
# no address) takes every packet and answers none, like the internet for a private address. Without
# it coturn's relay send to a peer's LAN host candidate (198.18.x) failed at once with ENETUNREACH;
# coturn 4.6 then closes the whole allocation (any sendto error but EINTR, EAGAIN/ENOBUFS and
# ECONNRESET/ECONNREFUSED marks the relay socket to be closed: udp_send and
# send_data_from_ioa_socket_nbh in ns_ioalib_engine_impl.c), so with ICE policy "all" every later
# check through TURN failed (438 Wrong nonce from a fresh session, then 400). A real TURN server has
# a default route: the send succeeds and the packet is lost upstream. A blackhole route would not do
# (sendto gives EINVAL); ARP is off so nothing waits for a neighbour that never answers.
UPSTREAM_IF = "inet0"
UPSTREAM_PEER_IF = "inet1"
# the delay namespace's two sides (delayline.py forwards between them)
DELAY_HOST_IF = "tohost"
DELAY_ROUTER_IF = "torouter"
NFT_TABLE = "lab"
# how long an address-dependent filter remembers a destination the LAN host sent to
ADDRESS_FILTER_TIMEOUT_S = 120
LOSS_SCALE = 1000  # loss_percent is applied in steps of 0.1 %


@dataclass(frozen=True, slots=True)
class Command:
    """One command line; ``input`` goes to its stdin. ``why`` says what it is for, for errors."""

    argv: tuple[str, ...]
    why: str
    input: str | None = None


def namespace(lab_id: str, host: str) -> str:
    if not LAB_ID_RE.match(lab_id):
        raise ValueError(f"lab id must be 8 lowercase hex digits, got {lab_id!r}")
    return f"{NAME_PREFIX}{lab_id}-{host}"


def host_names() -> list[str]:
    """Every host of a lab: public ones first, then each router with its LAN host."""
    names = [RELAY, STUN]
    for lan in LAN_NAMES:
        names += [router_name(lan), lan]
    return names


def delay_name(lan: str) -> str:
    """The delay namespace's name part on LAN ``lan``'s link (not a host: it has no address)."""
    return f"delay-{lan}"


def namespaces(lab_id: str, topology: Topology | None = None) -> list[str]:
    """A lab's namespaces; with no topology, every one a lab can have (the delay ones too)."""
    delayed = [lan for lan in LAN_NAMES if topology is None or has_delay(topology.router(lan))]
    return ([namespace(lab_id, SWITCH)] + [namespace(lab_id, h) for h in host_names()]
            + [namespace(lab_id, delay_name(lan)) for lan in delayed])


def has_delay(router: Router) -> bool:
    return router.impairment.delay_ms > 0


def parse_namespace(name: str) -> tuple[str, str] | None:
    """``p2pdiag-0123abcd-router-a`` -> ``("0123abcd", "router-a")``; None for anyone else's."""
    m = NAMESPACE_RE.match(name)
    return (m.group(1), m.group(2)) if m else None


def _ip(ns: str, *args: str, why: str) -> Command:
    return Command(("ip", "-n", ns, *args), why)


def _in_ns(ns: str, *argv: str, why: str, input: str | None = None) -> Command:
    return Command(("ip", "netns", "exec", ns, *argv), why, input)


def _sysctl(ns: str, settings: dict[str, str], why: str) -> Command:
    return _in_ns(ns, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items()), why=why)


def _address(ns: str, ifname: str, cidr: str) -> list[Command]:
    return [_ip(ns, "addr", "add", cidr, "dev", ifname, why=f"address {cidr} on {ifname}"),
            _ip(ns, "link", "set", ifname, "up", why=f"bring {ifname} up")]


def _namespace_settings(host: str, ns: str) -> list[Command]:
    # New namespaces copy some IPv4 settings from the host (rp_filter among them); set what
    # matters explicitly. IPv6 stays off on the lab's links so every candidate is IPv4 and
    # no link waits for duplicate address detection; lo keeps ::1. (A delay namespace sends
    # nothing of its own: no IPv6 means no router solicitations either.)
    settings = {"net.ipv6.conf.default.disable_ipv6": "1",
                "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
    if host.startswith("router-"):
        settings["net.ipv4.ip_forward"] = "1"
    return [_sysctl(ns, settings, why=f"sysctls of {host}"),
            _ip(ns, "link", "set", "lo", "up", why=f"bring lo up in {host}")]


def up_commands(topology: Topology, lab_id: str) -> list[Command]:
    """Everything that builds the lab's network, in order. Starting coturn is coturn.py's job."""
    t = topology
    ns = {h: namespace(lab_id, h) for h in [SWITCH, *host_names()]}
    delays = {delay_name(lan): namespace(lab_id, delay_name(lan)) for lan in LAN_NAMES if has_delay(t.router(lan))}
    cmds = [Command(("ip", "netns", "add", n), f"create namespace {n}") for n in [*ns.values(), *delays.values()]]

    for host, n in {**ns, **delays}.items():
        cmds += _namespace_settings(host, n)

    sw = ns[SWITCH]
    cmds += [_ip(sw, "link", "add", BRIDGE, "type", "bridge", why="public network bridge"),
             _ip(sw, "link", "set", BRIDGE, "up", why="bring the bridge up")]

    prefix = t.public_prefix
    public = {RELAY: (HOST_IF, [t.relay_ip]), STUN: (HOST_IF, [t.stun_ip, t.stun_alt_ip])}
    public.update({router_name(lan): (WAN_IF, [t.router_wan_ip(lan)]) for lan in LAN_NAMES})
    for host, (ifname, ips) in public.items():
        cmds += [
            _ip(sw, "link", "add", host, "type", "veth", "peer", "name", ifname, "netns", ns[host],
                why=f"veth from the public bridge to {host}"),
            _ip(sw, "link", "set", host, "master", BRIDGE, "up", why=f"plug {host} into the bridge"),
        ]
        for ip in ips:
            cmds.append(_ip(ns[host], "addr", "add", f"{ip}/{prefix}", "dev", ifname,
                            why=f"address {ip} of {host}"))
        cmds.append(_ip(ns[host], "link", "set", ifname, "up", why=f"bring {ifname} of {host} up"))

    st = ns[STUN]
    cmds += [_ip(st, "link", "add", UPSTREAM_IF, "type", "veth", "peer", "name", UPSTREAM_PEER_IF,
                 "netns", st, why="the STUN/TURN host's link to nowhere (its default route)"),
             _ip(st, "link", "set", UPSTREAM_IF, "arp", "off", "up", why=f"bring {UPSTREAM_IF} up without ARP"),
             _ip(st, "link", "set", UPSTREAM_PEER_IF, "up", why=f"bring {UPSTREAM_PEER_IF} up"),
             _ip(st, "route", "add", "default", "dev", UPSTREAM_IF,
                 why="default route of the STUN/TURN host: packets to addresses off the lab are lost, not refused")]

    for lan in LAN_NAMES:
        cmds += lan_link_commands(t, lab_id, lan)

    # A LAN without NAT is reachable by its own addresses: every other public-side host routes it.
    for lan in LAN_NAMES:
        if t.router(lan).nat is NatMode.NONE:
            for other in public:
                if other != router_name(lan):
                    cmds.append(_ip(ns[other], "route", "add", str(t.lan_subnet(lan)),
                                    "via", t.router_wan_ip(lan), why=f"route to LAN {lan} from {other}"))

    for lan in LAN_NAMES:
        cmds += router_commands(t, lab_id, lan, fresh=True)
    return cmds


def lan_link_commands(topology: Topology, lab_id: str, lan: str) -> list[Command]:
    """LAN ``lan``'s link from its router to its host, with addresses and the host's default route.

    Without delay one veth. With delay two, through the delay namespace (which must exist; see
    delay_namespace_commands): the delay line forwards between them, so nothing in that namespace
    has an address, and router and host see each other as neighbours on one Ethernet.
    """
    t = topology
    r, h = namespace(lab_id, router_name(lan)), namespace(lab_id, lan)
    plen = t.lan_subnet(lan).prefixlen
    if not has_delay(t.router(lan)):
        cmds = [_ip(r, "link", "add", LAN_IF, "type", "veth", "peer", "name", HOST_IF, "netns", h,
                    why=f"veth from router-{lan} to host {lan}")]
    else:
        d = namespace(lab_id, delay_name(lan))
        cmds = [_ip(r, "link", "add", LAN_IF, "type", "veth", "peer", "name", DELAY_ROUTER_IF, "netns", d,
                    why=f"veth from router-{lan} to its delay line"),
                _ip(d, "link", "add", DELAY_HOST_IF, "type", "veth", "peer", "name", HOST_IF, "netns", h,
                    why=f"veth from the delay line to host {lan}")]
        for ifname in (DELAY_ROUTER_IF, DELAY_HOST_IF):
            cmds.append(_ip(d, "link", "set", ifname, "promisc", "on", "up",
                            why=f"bring the delay line's {ifname} up, promiscuous"))
    cmds += _address(r, LAN_IF, f"{t.router_lan_ip(lan)}/{plen}")
    cmds += _address(h, HOST_IF, f"{t.host_ip(lan)}/{plen}")
    cmds.append(_ip(h, "route", "add", "default", "via", t.router_lan_ip(lan),
                    why=f"default route of host {lan}"))
    return cmds


def delay_namespace_commands(lab_id: str, lan: str) -> list[Command]:
    """Create LAN ``lan``'s delay namespace in a lab that is up (before lan_link_commands)."""
    d = namespace(lab_id, delay_name(lan))
    return [Command(("ip", "netns", "add", d), f"create namespace {d}"),
            *_namespace_settings(delay_name(lan), d)]


def relink_commands(topology: Topology, lab_id: str, lan: str, had_delay: bool) -> list[Command]:
    """Rebuild LAN ``lan``'s link after its router gained (``had_delay`` False) or lost its delay.

    Links are deleted one by one, because a deleted namespace's interfaces go away only later (the
    kernel cleans a namespace up asynchronously) and the new lan0 would clash with the old. Deleting
    one end of a veth deletes the other. The delay line must be stopped first (runner.py). The
    host's sockets stay open; its address and default route are added again.
    """
    r = namespace(lab_id, router_name(lan))
    if had_delay:
        d = namespace(lab_id, delay_name(lan))
        cmds = [_ip(d, "link", "del", DELAY_HOST_IF, why=f"remove the delay line's link to host {lan}"),
                _ip(d, "link", "del", DELAY_ROUTER_IF, why=f"remove the delay line's link to router-{lan}"),
                Command(("ip", "netns", "del", d), f"delete namespace {d}")]
    else:
        cmds = [_ip(r, "link", "del", LAN_IF, why=f"remove router-{lan}'s LAN link")]
    if has_delay(topology.router(lan)):
        cmds += delay_namespace_commands(lab_id, lan)
    return cmds + lan_link_commands(topology, lab_id, lan)


def router_commands(topology: Topology, lab_id: str, lan: str, fresh: bool = False) -> list[Command]:
    """(Re)apply one router's rules, then forget old mappings.

    ``fresh`` is for a router just built: no conntrack entries yet. Delay is not a rule here: it
    is the delay line on the LAN link (lan_link_commands, delayline.py).
    """
    router = topology.router(lan)
    r = namespace(lab_id, router_name(lan))
    cmds = [_in_ns(r, "nft", "-f", "-", why=f"nftables rules of router-{lan}",
                   input=ruleset(router, host_ip=topology.host_ip(lan), stun_port=topology.stun_port))]
    if not fresh:
        # mappings outlive the rules that made them (docs/lab.md): drop them with the rules
        cmds.append(_in_ns(r, "conntrack", "-F", why=f"flush router-{lan}'s conntrack table"))
    return cmds


def ruleset(router: Router, host_ip: str, stun_port: int) -> str:
    """The router's whole nftables ruleset (replaces whatever the namespace had).

    Mapping:   cone/full-cone -> ``masquerade`` (Linux keeps the source port when it is free, so one
               LAN port maps to one WAN port for every destination); symmetric -> ``masquerade
               fully-random`` (a new random port per destination).
    Filtering: conntrack alone gives address-and-port-dependent filtering: a packet from anyone
               else has no conntrack entry, is addressed to the router itself and is dropped
               silently (the input chain), so it leaves no conntrack entry behind.
               Endpoint-independent and address-dependent filtering send unsolicited UDP to the
               LAN host's same port (the port masquerade kept); address-dependent only from an
               address that LAN port has sent to (a dynamic set of (address, port), refreshed by
               every packet out). With no NAT, the same rules make a stateful firewall.
    UDP:       blocked drops all forwarded UDP; stun-only lets through only UDP to and from
               ``stun_port``.
    Loss:      a random drop of forwarded packets (``numgen random``), before everything else.
    """
    nat = router.nat
    filtering = router.effective_filtering
    lines = ["flush ruleset", f"table ip {NFT_TABLE} {{"]
    if filtering is Filtering.ADDRESS_DEPENDENT:
        lines += ["  set contacted {",
                  "    type ipv4_addr . inet_service",
                  "    flags dynamic, timeout",
                  f"    timeout {ADDRESS_FILTER_TIMEOUT_S}s",
                  "  }"]
    if nat is not NatMode.NONE:
        lines += ["  chain prerouting {",
                  "    type nat hook prerouting priority dstnat; policy accept;"]
        if filtering is not Filtering.ADDRESS_AND_PORT_DEPENDENT:
            lines.append(f'    iifname "{WAN_IF}" udp dport 1024-65535 dnat to {host_ip}')
        lines += ["  }",
                  "  chain postrouting {",
                  "    type nat hook postrouting priority srcnat; policy accept;",
                  f'    oifname "{WAN_IF}" masquerade' + (" fully-random" if nat is NatMode.SYMMETRIC else ""),
                  "  }"]
    lines += ["  chain forward {",
              "    type filter hook forward priority filter; policy accept;"]
    lost = round(router.impairment.loss_percent * LOSS_SCALE / 100)
    if lost:
        # every forwarded packet, in either direction, passes here once; "<=" keeps 100 % in range
        lines.append(f"    numgen random mod {LOSS_SCALE} <= {lost - 1} drop")
    if router.udp is UdpPolicy.BLOCKED:
        lines.append("    meta l4proto udp drop")
    elif router.udp is UdpPolicy.STUN_ONLY:
        lines += [f'    iifname "{LAN_IF}" udp dport != {stun_port} drop',
                  f'    iifname "{WAN_IF}" udp sport != {stun_port} drop']
    if filtering is Filtering.ADDRESS_DEPENDENT:
        # keyed by (remote address, LAN host's port): RFC 4787 filters per mapping, not per host
        lines.append(f'    oifname "{WAN_IF}" meta l4proto udp update @contacted {{ ip daddr . udp sport }}')
    lines.append("    ct state established,related accept")
    if filtering is Filtering.ADDRESS_DEPENDENT:
        lines.append(f'    iifname "{WAN_IF}" ct state new meta l4proto udp ip saddr . udp dport @contacted accept')
    if filtering is not Filtering.ENDPOINT_INDEPENDENT:
        lines.append(f'    iifname "{WAN_IF}" ct state new drop')
    lines.append("  }")
    if nat is not NatMode.NONE:
        # Unsolicited UDP to the router itself must vanish, not be refused: a refused packet leaves a
        # confirmed conntrack entry (remote -> WAN:port), and when the LAN host then sends to that
        # remote from the same port, masquerade finds the tuple taken and picks another port. Two
        # cone peers whose ICE checks cross would each lose the port the other was told about.
        lines += ["  chain input {",
                  "    type filter hook input priority filter; policy accept;",
                  f'    iifname "{WAN_IF}" meta l4proto udp ct state new drop',
                  "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def down_commands(lab_id: str) -> list[Command]:
    """Delete every namespace a lab can have (runner.py skips those not there); veths and the
    bridge go with them. Delay namespaces first, the public bridge last.

    Processes still inside a namespace keep it alive: runner.py ends them first (``ip netns pids``).
    """
    return [Command(("ip", "netns", "del", n), f"delete namespace {n}") for n in reversed(namespaces(lab_id))]
