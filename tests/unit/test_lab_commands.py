"""The lab's command lists and configs, read without root: what would run, not running it.

tests/lab/ applies the same lists for real and checks what the routers do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pdiag.lab import coturn, netns
from p2pdiag.lab.topology import Filtering, Impairment, NatMode, Router, Topology, UdpPolicy

LAB_ID = "0123abcd"
PREFIX = f"p2pdiag-{LAB_ID}-"


def argvs(topology: Topology) -> list[tuple[str, ...]]:
    return [c.argv for c in netns.up_commands(topology, LAB_ID)]


def nft_input(topology: Topology, lan: str) -> str:
    [cmd] = [c for c in netns.up_commands(topology, LAB_ID)
             if c.argv[-3:] == ("nft", "-f", "-") and c.argv[3] == PREFIX + f"router-{lan}"]
    assert cmd.input is not None
    return cmd.input


def test_every_command_targets_a_namespace_of_this_lab():
    """The host namespace gets nothing: every command names one of the lab's own namespaces."""
    topo = Topology(a=Router(nat="none"), b=Router(nat="symmetric", impairment=Impairment(delay_ms=5)))
    for argv in argvs(topo) + [c.argv for c in netns.down_commands(LAB_ID)]:
        assert argv[0] == "ip", argv
        if argv[1] == "-n":
            ns = argv[2]
        else:
            assert argv[1] == "netns" and argv[2] in ("add", "del", "exec"), argv
            ns = argv[3]
        assert ns.startswith(PREFIX), argv
        # the other end of a veth also goes straight into a lab namespace
        if "peer" in argv:
            assert argv[argv.index("netns", argv.index("peer")) + 1].startswith(PREFIX), argv


@pytest.mark.parametrize("topo", [Topology(), Topology(b=Router(impairment=Impairment(delay_ms=5)))])
def test_namespaces_come_first_and_go_last(topo):
    cmds = argvs(topo)
    adds = [a for a in cmds if a[:3] == ("ip", "netns", "add")]
    assert cmds[:len(adds)] == adds
    assert sorted(a[3] for a in adds) == sorted(netns.namespaces(LAB_ID, topo))
    assert len(adds) == 7 + (topo.b.impairment.delay_ms > 0)  # a delay namespace only for delay
    # teardown tries every namespace a lab can have: delay ones first, the bridge's last
    downs = [c.argv[3] for c in netns.down_commands(LAB_ID)]
    assert sorted(downs) == sorted(netns.namespaces(LAB_ID))
    assert set(netns.namespaces(LAB_ID, topo)) <= set(downs)
    assert downs[0].endswith("-delay-b") and downs[-1].endswith("-net")


def test_routers_forward_and_do_not_filter_reverse_paths():
    cmds = argvs(Topology())
    for lan in ("a", "b"):
        [sysctl] = [a for a in cmds if a[3] == PREFIX + f"router-{lan}" and "sysctl" in a]
        assert "net.ipv4.ip_forward=1" in sysctl
        assert "net.ipv4.conf.all.rp_filter=0" in sysctl and "net.ipv4.conf.default.rp_filter=0" in sysctl
    [host_sysctl] = [a for a in cmds if a[3] == PREFIX + "a" and "sysctl" in a]
    assert "net.ipv4.ip_forward=1" not in host_sysctl
    assert "net.ipv6.conf.default.disable_ipv6=1" in host_sysctl


def test_addresses_and_default_routes():
    topo = Topology()
    cmds = argvs(topo)
    assert ("ip", "-n", PREFIX + "stun", "addr", "add", "203.0.113.3/24", "dev", "eth0") in cmds
    assert ("ip", "-n", PREFIX + "stun", "addr", "add", "203.0.113.4/24", "dev", "eth0") in cmds
    assert ("ip", "-n", PREFIX + "a", "route", "add", "default", "via", "198.18.1.1") in cmds
    assert ("ip", "-n", PREFIX + "b", "route", "add", "default", "via", "198.18.2.1") in cmds
    assert topo.hosts() == {"relay": "203.0.113.10", "stun": "203.0.113.3", "router-a": "203.0.113.1",
                            "a": "198.18.1.10", "router-b": "203.0.113.2", "b": "198.18.2.10"}


def test_the_stun_turn_host_has_a_default_route_to_a_link_that_drops_everything():
    """coturn's relay send to a peer's private LAN address must be lost, not refused with
    ENETUNREACH (which makes coturn close the whole allocation): a default route, as on the internet."""
    cmds = argvs(Topology())
    st = ("ip", "-n", PREFIX + "stun")
    assert (*st, "link", "add", "inet0", "type", "veth", "peer", "name", "inet1", "netns", PREFIX + "stun") in cmds
    assert (*st, "link", "set", "inet0", "arp", "off", "up") in cmds
    assert (*st, "link", "set", "inet1", "up") in cmds
    assert (*st, "route", "add", "default", "dev", "inet0") in cmds
    assert not any(a[3] == "inet1" and "addr" in a for a in cmds)  # nobody answers at the far end
    # nothing else gets a default route on the public side
    defaults = {a[2] for a in cmds if a[:2] == ("ip", "-n") and a[3:6] == ("route", "add", "default")}
    assert defaults == {PREFIX + h for h in ("stun", "a", "b")}


def test_only_a_lan_without_nat_is_routed_from_the_public_side():
    routed = [a for a in argvs(Topology(a=Router(nat="none"))) if "route" in a and "default" not in a]
    assert {a[2] for a in routed} == {PREFIX + h for h in ("relay", "stun", "router-b")}
    assert all(a[5:] == ("198.18.1.0/24", "via", "203.0.113.1") for a in routed)
    assert not [a for a in argvs(Topology()) if "route" in a and "default" not in a]


@pytest.mark.parametrize("router, masquerade", [
    (Router(nat="cone"), "masquerade"),
    (Router(nat="full-cone"), "masquerade"),
    (Router(nat="symmetric"), "masquerade fully-random"),
])
def test_mapping_rules(router, masquerade):
    rules = netns.ruleset(router, host_ip="198.18.1.10", stun_port=3478)
    assert f'oifname "wan0" {masquerade}\n' in rules
    assert rules.startswith("flush ruleset\n")


def test_no_nat_has_no_nat_chains():
    rules = netns.ruleset(Router(nat="none"), host_ip="198.18.1.10", stun_port=3478)
    assert "masquerade" not in rules and "dnat" not in rules and "ct state new" not in rules


@pytest.mark.parametrize("router, dnat, new_inbound", [
    (Router(nat="cone"), False, "drop"),
    (Router(nat="cone", filtering="address-dependent"), True, "set"),
    (Router(nat="cone", filtering="endpoint-independent"), True, None),
    (Router(nat="full-cone"), True, None),
    (Router(nat="symmetric"), False, "drop"),
    (Router(nat="none", filtering="address-and-port-dependent"), False, "drop"),
    (Router(nat="none", filtering="address-dependent"), False, "set"),
])
def test_filtering_rules(router, dnat, new_inbound):
    rules = netns.ruleset(router, host_ip="198.18.1.10", stun_port=3478)
    assert ('iifname "wan0" udp dport 1024-65535 dnat to 198.18.1.10' in rules) is dnat
    assert ('iifname "wan0" ct state new drop' in rules) is (new_inbound in ("drop", "set"))
    has_set = ("update @contacted { ip daddr . udp sport }" in rules
               and "ip saddr . udp dport @contacted accept" in rules)
    assert has_set is (new_inbound == "set")
    # replies to what the LAN sent are let in before anything new is judged
    if new_inbound:
        assert rules.index("ct state established,related accept") < rules.index('iifname "wan0" ct state new drop')


@pytest.mark.parametrize("udp, wanted, unwanted", [
    (UdpPolicy.OPEN, [], ["meta l4proto udp drop", "dport !="]),
    (UdpPolicy.BLOCKED, ["meta l4proto udp drop"], ["dport !="]),
    (UdpPolicy.STUN_ONLY, ['iifname "lan0" udp dport != 3478 drop', 'iifname "wan0" udp sport != 3478 drop'],
     ["meta l4proto udp drop"]),
])
def test_udp_policy_rules(udp, wanted, unwanted):
    rules = netns.ruleset(Router(udp=udp), host_ip="198.18.1.10", stun_port=3478)
    for line in wanted:
        assert line in rules
        # a UDP policy holds for replies too, so it comes before the conntrack accept
        assert rules.index(line) < rules.index("ct state established,related accept")
    for text in unwanted:
        assert text not in rules


def test_delay_is_a_delay_namespace_on_the_lan_link_and_loss_is_an_nft_rule():
    topo = Topology(b=Router(impairment=Impairment(delay_ms=20, jitter_ms=5, loss_percent=1.5)))
    cmds = argvs(topo)
    assert not [a for a in cmds if "tc" in a or "netem" in a]
    links = [a for a in cmds if a[3:5] == ("link", "add") and "veth" in a]
    delay_b = PREFIX + "delay-b"
    # router-b lan0 <-> delay-b torouter, delay-b tohost <-> b eth0; router-a's LAN stays one veth
    assert (PREFIX + "router-b", "lan0", "torouter", delay_b) in [(a[2], a[5], a[a.index("peer") + 2], a[-1])
                                                                  for a in links]
    assert (delay_b, "tohost", "eth0", PREFIX + "b") in [(a[2], a[5], a[a.index("peer") + 2], a[-1]) for a in links]
    assert (PREFIX + "router-a", "lan0", "eth0", PREFIX + "a") in [(a[2], a[5], a[a.index("peer") + 2], a[-1])
                                                                   for a in links]
    # the delay namespace gets no address and no route: it is a wire
    assert not [a for a in cmds if a[:3] == ("ip", "-n", delay_b) and ("addr" in a or "route" in a)]
    assert [a[-2:] for a in cmds if a[:3] == ("ip", "-n", delay_b) and "promisc" in a] == [("on", "up")] * 2
    rules = nft_input(topo, "b")
    assert "    numgen random mod 1000 <= 14 drop\n" in rules
    assert rules.index("numgen") < rules.index("ct state established,related accept")
    assert "numgen" not in nft_input(topo, "a")
    lossy = Topology(a=Router(impairment=Impairment(loss_percent=100)))
    assert not [a for a in argvs(lossy) if a[2].endswith("-delay-a")]
    assert "numgen random mod 1000 <= 999 drop" in nft_input(lossy, "a")


def test_reconfiguring_a_router_flushes_conntrack():
    topo = Topology()
    cmds = netns.router_commands(topo, LAB_ID, "a")
    assert cmds[-1].argv == ("ip", "netns", "exec", PREFIX + "router-a", "conntrack", "-F")
    fresh = netns.router_commands(topo, LAB_ID, "a", fresh=True)
    assert not any("conntrack" in c.argv for c in fresh)


def test_relinking_inserts_or_removes_the_delay_namespace_link_by_link():
    delayed = Topology(a=Router(impairment=Impairment(delay_ms=40)))
    adding = [c.argv for c in netns.relink_commands(delayed, LAB_ID, "a", had_delay=False)]
    assert adding[0] == ("ip", "-n", PREFIX + "router-a", "link", "del", "lan0")  # takes a's eth0 with it
    assert ("ip", "netns", "add", PREFIX + "delay-a") in adding
    assert adding[-1][-3:] == ("default", "via", "198.18.1.1")  # host a's route comes back
    removing = [c.argv for c in netns.relink_commands(Topology(), LAB_ID, "a", had_delay=True)]
    # each veth deleted before its namespace: a deleted namespace's links go away only later
    assert removing[:3] == [("ip", "-n", PREFIX + "delay-a", "link", "del", "tohost"),
                            ("ip", "-n", PREFIX + "delay-a", "link", "del", "torouter"),
                            ("ip", "netns", "del", PREFIX + "delay-a")]
    assert not [a for a in removing[3:] if PREFIX + "delay-a" in a]


def test_delay_line_argv_runs_in_its_namespace():
    from p2pdiag.lab.delayline import DelayLine
    line = DelayLine(PREFIX + "delay-a", ("tohost", "torouter"), 40, 2.5, Path("/tmp/x.log"))
    argv = line.argv()
    assert argv[:4] == ["ip", "netns", "exec", PREFIX + "delay-a"]
    assert argv[5].endswith("p2pdiag/lab/delayline.py")
    assert argv[6:] == ["tohost", "torouter", "--delay-ms", "40", "--jitter-ms", "2.5"]


def test_namespace_names():
    assert netns.namespace(LAB_ID, "router-a") == "p2pdiag-0123abcd-router-a"
    assert netns.parse_namespace("p2pdiag-0123abcd-router-a") == ("0123abcd", "router-a")
    assert netns.parse_namespace("p2pdiag-0123abcd-net") == ("0123abcd", "net")
    assert netns.parse_namespace("someone-else") is None
    assert netns.parse_namespace("p2pdiag-xyz-a") is None
    with pytest.raises(ValueError):
        netns.namespace("../etc", "a")
    # Linux interface names are at most 15 bytes; the bridge ports are named after hosts
    assert all(len(h) <= 15 for h in netns.host_names())


def test_router_validation_and_defaults():
    assert Router().effective_filtering is Filtering.ADDRESS_AND_PORT_DEPENDENT
    assert Router(nat="full-cone").effective_filtering is Filtering.ENDPOINT_INDEPENDENT
    assert Router(nat="none").effective_filtering is Filtering.ENDPOINT_INDEPENDENT
    assert Router(nat="symmetric").nat is NatMode.SYMMETRIC
    with pytest.raises(ValueError, match="full-cone"):
        Router(nat="full-cone", filtering="address-dependent")
    with pytest.raises(ValueError, match="symmetric"):
        Router(nat="symmetric", filtering="endpoint-independent")
    with pytest.raises(ValueError):
        Router(nat="carrier-grade")
    with pytest.raises(ValueError, match="jitter"):
        Impairment(jitter_ms=3)


def test_topology_round_trips_through_a_dict():
    topo = Topology(a=Router(nat="symmetric", udp="stun-only"),
                    b=Router(nat="cone", filtering="address-dependent", impairment=Impairment(delay_ms=10)))
    assert Topology.from_dict(topo.to_dict()) == topo
    denying = Topology(turn_denied_peers=("203.0.113.0/24",))
    assert Topology.from_dict(json.loads(json.dumps(denying.to_dict()))) == denying
    with pytest.raises(ValueError, match="turn_denied_peers"):
        Topology(turn_denied_peers=("203.0.113.0/33",))
    assert Topology.from_dict({"a": {"nat": "cone", "udp": "blocked", "delay_ms": 20}}).a == Router(
        udp="blocked", impairment=Impairment(delay_ms=20))
    with pytest.raises(ValueError, match="unknown router settings"):
        Topology.from_dict({"a": {"nat": "cone", "latency": 3}})
    with pytest.raises(ValueError, match="unknown topology settings"):
        Topology.from_dict({"c": {}})


def test_topology_rejects_overlapping_subnets():
    with pytest.raises(ValueError, match="overlap"):
        Topology(lan_subnets=("198.18.1.0/24", "198.18.0.0/16"))
    with pytest.raises(ValueError, match="overlap"):
        Topology(public_subnet="198.18.1.0/24")


def test_coturn_config_enables_rfc5780_and_long_term_credentials():
    topo = Topology()
    conf = coturn.config(topo, Path("/run/p2pdiag/labs/x")).splitlines()
    for line in ["listening-ip=203.0.113.3", "listening-ip=203.0.113.4", "listening-port=3478",
                 "alt-listening-port=3479", "no-tls", "no-cli", "lt-cred-mech", "user=p2pdiag:p2pdiag-lab",
                 "realm=p2pdiag.lab", "log-file=stdout", "userdb=/run/p2pdiag/labs/x/turndb"]:
        assert line in conf
    assert "no-rfc5780" not in conf  # Debian's own config has it; RFC 5780 discovery needs it off
    assert coturn.listening_sockets(topo) == {"203.0.113.3:3478", "203.0.113.3:3479",
                                              "203.0.113.4:3478", "203.0.113.4:3479"}


def test_coturn_config_denies_the_peer_ranges_asked_for():
    assert not any(line.startswith("denied-peer-ip") for line in coturn.config(Topology(), Path("/x")).splitlines())
    conf = coturn.config(Topology(turn_denied_peers=("203.0.113.0/24", "198.18.0.0/15")), Path("/x")).splitlines()
    assert [line for line in conf if line.startswith("denied-peer-ip")] == [
        "denied-peer-ip=203.0.113.0-203.0.113.255", "denied-peer-ip=198.18.0.0-198.19.255.255"]
