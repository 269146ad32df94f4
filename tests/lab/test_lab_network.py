"""The lab's network, checked for real from inside its namespaces.

Each NAT mode is classified by coturn's own RFC 5780 client (turnutils_natdiscovery) against the
lab's coturn; UDP policies by a UDP/TCP echo on the relay host. About 40 s in all, most of it
natdiscovery waiting out the STUN responses a filtering router drops.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pdiag.lab import Impairment, Lab, LabError, NeedsRoot, Router, Topology
from p2pdiag.lab.delayline import DelayLine, DelayLineError
from p2pdiag.lab.runner import existing_namespaces, teardown

ROOT = Path(__file__).resolve().parents[2]
UP_BUDGET_S = 5.0  # measured ~0.2 s; the whole issue-5 suite builds a lab per scenario
DOWN_BUDGET_S = 5.0  # measured ~0.05 s


def lab_namespaces(lab_id: str) -> list[str]:
    return [n for n in existing_namespaces() if n.startswith(f"p2pdiag-{lab_id}-")]


def host_network_snapshot() -> dict[str, str]:
    """What the host's own namespace has: it must not change while a lab is up or after."""
    cmds = {"links": ["ip", "-o", "link"], "addrs": ["ip", "-o", "addr"], "routes": ["ip", "route"],
            "routes6": ["ip", "-6", "route"], "nft": ["nft", "list", "ruleset"]}
    out = {k: subprocess.run(v, capture_output=True, text=True, check=False).stdout for k, v in cmds.items()}
    # interface counters and address lifetimes change on their own
    out["addrs"] = re.sub(r"valid_lft \S+ preferred_lft \S+", "", out["addrs"])
    return out


def test_up_builds_an_isolated_lab_and_down_removes_it(make_lab, probe, echo_server):
    before = host_network_snapshot()
    lab = make_lab()
    print(f"\nlab up in {lab.up_s:.3f} s")
    assert lab.up_s < UP_BUDGET_S
    assert host_network_snapshot() == before

    status = lab.status()
    assert status.up and status.coturn_running
    assert status.hosts["stun"].addresses == ("eth0 203.0.113.3/24", "eth0 203.0.113.4/24")
    assert status.hosts["router-a"].addresses == ("wan0 203.0.113.1/24", "lan0 198.18.1.1/24")
    assert status.hosts["a"].addresses == ("eth0 198.18.1.10/24",)
    assert lab.address("relay") == "203.0.113.10" and lab.address("b") == "198.18.2.10"
    assert lab.stun_url == "stun:203.0.113.3:3478"
    assert lab.ice_servers()[1] == {"urls": "turn:203.0.113.3:3478?transport=udp",
                                    "username": "p2pdiag", "credential": "p2pdiag-lab"}

    echo_server(lab, "relay", 7000)
    relay = lab.address("relay")
    seen_a = probe(lab, "a", f"udp:{relay}:7000", f"tcp:{relay}:7000")
    seen_b = probe(lab, "b", f"udp:{relay}:7000")
    assert {v.split(":")[0] for v in seen_a.values()} == {"203.0.113.1"}  # through router-a's NAT
    assert seen_b[f"udp:{relay}:7000"].startswith("203.0.113.2:")
    # a LAN behind NAT is not reachable by its own address from the public side
    assert lab.run("relay", ["ping", "-c1", "-W1", lab.address("a")], capture_output=True).returncode != 0

    lab.down()
    print(f"lab down in {lab.down_s:.3f} s")
    assert lab.down_s < DOWN_BUDGET_S
    assert lab_namespaces(lab.lab_id) == []
    assert not lab.state_dir.exists()
    assert host_network_snapshot() == before
    lab.down()  # idempotent


MAPPING_RE = re.compile(r"NAT with (.+) Mapping!")
FILTERING_RE = re.compile(r"NAT with (.+) Filtering!")
REFLEXIVE_RE = re.compile(r"UDP reflexive addr: ([\d.]+):\d+")

EIM, APDM = "Endpoint Independent", "Address and Port Dependent"
EIF, ADF, APDF = "Endpoint Independent", "Address Dependent", "Address and Port Dependent"


@pytest.mark.parametrize("a, b, expected", [
    (Router(nat="cone"), Router(nat="symmetric"), {"a": (EIM, APDF), "b": (APDM, APDF)}),
    (Router(nat="full-cone"), Router(nat="cone", filtering="address-dependent"), {"a": (EIM, EIF), "b": (EIM, ADF)}),
    (Router(nat="none"), Router(nat="none", filtering="address-and-port-dependent"),
     {"a": (EIM, EIF), "b": (EIM, APDF)}),
], ids=["cone|symmetric", "full-cone|cone+address-dependent", "none|none+stateful-firewall"])
def test_natdiscovery_classifies_each_router_as_configured(make_lab, a, b, expected):
    lab = make_lab(a=a, b=b)
    procs = {h: lab.exec(h, ["turnutils_natdiscovery", "-m", "-f", lab.topology.stun_ip],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for h in ("a", "b")}
    for host, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        mapping, filtering = MAPPING_RE.findall(out), FILTERING_RE.findall(out)
        print(f"\n{host} {lab.topology.router(host).to_dict()}: {mapping} mapping, {filtering} filtering")
        assert (mapping, filtering) == ([expected[host][0]], [expected[host][1]]), out
        reflexive = set(REFLEXIVE_RE.findall(out))
        nat = lab.topology.router(host).nat != "none"
        assert reflexive == {lab.address(f"router-{host}") if nat else lab.address(host)}, out


def test_udp_blocked_keeps_tcp_and_stun_only_passes_only_the_stun_port(make_lab, probe, echo_server):
    lab = make_lab(a=Router(udp="blocked"), b=Router(udp="stun-only"))
    relay, stun_port = lab.address("relay"), lab.topology.stun_port
    echo_server(lab, "relay", 7000, stun_port)
    specs = [f"udp:{relay}:7000", f"udp:{relay}:{stun_port}", f"tcp:{relay}:7000"]
    stun = {h: lab.exec(h, ["turnutils_natdiscovery", "-m", lab.topology.stun_ip],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for h in ("a", "b")}
    seen = {h: probe(lab, h, *specs) for h in ("a", "b")}
    assert seen["a"][specs[0]] == seen["a"][specs[1]] == "timeout"
    assert seen["a"][specs[2]].startswith("203.0.113.1:")
    assert seen["b"][specs[0]] == "timeout"
    assert seen["b"][specs[1]].startswith("203.0.113.2:")
    assert seen["b"][specs[2]].startswith("203.0.113.2:")
    out = {h: p.communicate(timeout=60)[0] for h, p in stun.items()}
    assert "STUN receive timeout" in out["a"] and not MAPPING_RE.search(out["a"]), out["a"]
    assert MAPPING_RE.findall(out["b"]) == [EIM], out["b"]


def test_turn_allocation_with_the_lab_credentials(lab):
    """An aioice TURN client (the one aiortc uses) gets a relayed address from the lab's coturn."""
    script = r"""
import asyncio, sys
from aioice import turn
async def main(ip, port, user, password):
    transport, _ = await asyncio.wait_for(turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=(ip, int(port)), username=user, password=password), 5)
    print(*transport.get_extra_info("sockname"))
    transport.close()
asyncio.run(main(*sys.argv[1:]))
"""
    t = lab.topology
    done = lab.run("a", [sys.executable, "-c", script, t.stun_ip, str(t.stun_port), lab.turn_username,
                         lab.turn_password], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr + lab.coturn.log_tail()
    ip, port = done.stdout.split()
    assert ip == t.stun_ip and t.turn_relay_ports[0] <= int(port) <= t.turn_relay_ports[1]


# An aioice TURN client in LAN a: sends through its allocation to a peer address the TURN server has
# no way to (LAN b's private address, as in a host candidate), then to an echo server in `relay`.
TURN_SEND = r"""
import asyncio, json, sys
from aioice import turn
class Peer(asyncio.DatagramProtocol):
    def __init__(self):
        self.got, self.errors = asyncio.Queue(), []
    def datagram_received(self, data, addr):
        self.got.put_nowait(data.decode())
    def error_received(self, exc):
        self.errors.append(str(exc))
async def main(ip, port, user, password, lost_ip, echo_ip, echo_port):
    transport, peer = await asyncio.wait_for(turn.create_turn_endpoint(
        Peer, server_addr=(ip, int(port)), username=user, password=password), 5)
    transport.sendto(b"lost", (lost_ip, 9))
    await asyncio.sleep(0.5)
    transport.sendto(b"hi", (echo_ip, int(echo_port)))
    try:
        echo = await asyncio.wait_for(peer.got.get(), 3)
    except asyncio.TimeoutError:
        echo = None
    print(json.dumps({"echo": echo, "errors": peer.errors}))
asyncio.run(main(*sys.argv[1:]))
"""


def _turn_send(lab, echo_server) -> dict:
    t = lab.topology
    echo_server(lab, "relay", 7000)
    done = lab.run("a", [sys.executable, "-c", TURN_SEND, t.stun_ip, str(t.stun_port), lab.turn_username,
                         lab.turn_password, lab.address("b"), lab.address("relay"), "7000"],
                   capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr + lab.coturn.log_tail()
    return json.loads(done.stdout)


def test_a_relayed_send_to_an_unroutable_peer_leaves_the_allocation_working(lab, echo_server):
    """As on the internet, coturn's send to a private address it has no route to is lost, not refused.

    Refused (ENETUNREACH: no default route in `stun`), coturn 4.6 closed the whole allocation, so the
    next channel bind got 438 and then 400, and with ICE policy "all" every check through TURN failed.
    """
    out = _turn_send(lab, echo_server)
    assert out["errors"] == [], out["errors"]
    assert out["echo"] is not None and out["echo"].startswith(lab.topology.stun_ip + ":"), out
    assert "udp send" not in lab.coturn.log_tail(100_000)


def test_denied_peer_ranges_get_403_forbidden_ip(make_lab, echo_server):
    """coturn with denied-peer-ip over the echo's address refuses the channel bind (403), and says so."""
    lab = make_lab(Topology(turn_denied_peers=("203.0.113.10/32",)))
    out = _turn_send(lab, echo_server)
    assert out["echo"] is None, out
    assert len(out["errors"]) == 1 and "403" in out["errors"][0], out["errors"]
    assert "CHANNEL_BIND processed, error 403: Forbidden IP" in lab.coturn.log_tail(100_000)


def test_set_router_changes_the_mapping_at_once(lab, probe, echo_server):
    """Rules change in place and conntrack is flushed, so an old mapping does not outlive them."""
    echo_server(lab, "relay", 7000)
    spec = f"udp:{lab.address('relay')}:7000:40000"
    assert probe(lab, "a", spec)[spec] == "203.0.113.1:40000"  # cone keeps the port
    lab.set_router("a", Router(nat="symmetric"))
    assert probe(lab, "a", spec)[spec] not in ("203.0.113.1:40000", "timeout")
    lab.set_router("a", Router(nat="cone"))
    assert probe(lab, "a", spec)[spec] == "203.0.113.1:40000"
    with pytest.raises(LabError, match="new lab"):
        lab.set_router("a", Router(nat="none"))


def ping_ms(lab: Lab, host: str) -> float | None:
    done = lab.run(host, ["ping", "-c1", "-W2", lab.address("relay")], capture_output=True, text=True)
    m = re.search(r"time=([\d.]+) ms", done.stdout)
    return float(m.group(1)) if m else None


def test_loss(make_lab):
    lab = make_lab(a=Router(impairment=Impairment(loss_percent=100)))
    assert ping_ms(lab, "a") is None
    assert ping_ms(lab, "b") < 20
    lab.set_router("a", Router(impairment=Impairment(loss_percent=50)))
    done = lab.run("a", ["ping", "-q", "-c", "40", "-i", "0.01", "-W", "1", lab.address("relay")],
                   capture_output=True, text=True)
    received = int(re.search(r"(\d+) received", done.stdout).group(1))
    assert 0 < received < 40, done.stdout  # about 25 %: each of request and reply 50 %
    lab.set_router("a", Router())
    assert ping_ms(lab, "a") < 20


# Round trips from a LAN host to the echo server in `relay`, in ms, one at a time: UDP (a datagram
# and its answer) and TCP (connect(), which returns when the SYN-ACK is in: one round trip). The
# first of each is left out: it may wait for ARP, which crosses the delay line too.
RTT = r"""
import json, socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {"udp": [], "tcp": []}
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
for i in range(n + 1):
    t = time.perf_counter()
    u.sendto(b"x", (ip, port))
    u.recvfrom(2048)
    if i:
        out["udp"].append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
for i in range(n + 1):
    s = socket.socket()
    s.settimeout(2)
    t = time.perf_counter()
    s.connect((ip, port))
    if i:
        out["tcp"].append((time.perf_counter() - t) * 1000)
    s.close()
    time.sleep(0.01)
print(json.dumps(out))
"""
RTT_SAMPLES = 15
# What the delay line may add beyond its delay, to the median of 15 round trips (each direction
# crosses it once). Measured here: 0.3-1.0 ms (epoll's millisecond timeout rounding, a Python hop
# per frame). The rest is room for a busy 2-core machine scheduling the line late.
DELAY_SLACK_MS = 25.0


def round_trips(lab: Lab, host: str) -> dict[str, list[float]]:
    done = lab.run(host, [sys.executable, "-c", RTT, lab.address("relay"), "7000", str(RTT_SAMPLES)],
                   capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def delay_line_pids(lab: Lab, lan: str) -> list[int]:
    return lab.status().delay_lines[lan]["pids"]


def test_delay_adds_two_delays_to_udp_and_tcp_round_trips_and_set_router_adds_and_removes_it(
        lab, echo_server):
    echo_server(lab, "relay", 7000)
    base = round_trips(lab, "a")
    assert lab.status().delay_lines == {}
    assert len(lab_namespaces(lab.lab_id)) == 7  # no delay, no delay namespace

    start = time.monotonic()
    lab.set_router("a", Router(impairment=Impairment(delay_ms=40)))
    print(f"\nset_router adding delay: {time.monotonic() - start:.3f} s")
    status = lab.status()
    assert status.up and status.delay_lines["a"]["running"] and len(status.delay_lines["a"]["pids"]) == 1
    assert "b" not in status.delay_lines
    assert f"p2pdiag-{lab.lab_id}-delay-a" in lab_namespaces(lab.lab_id)
    delayed = round_trips(lab, "a")
    other = round_trips(lab, "b")
    for proto in ("udp", "tcp"):
        b, d = median(base[proto]), median(delayed[proto])
        print(f"{proto}: {b:.2f} ms -> {d:.2f} ms (min {min(delayed[proto]):.2f}, max {max(delayed[proto]):.2f}); "
              f"LAN b {median(other[proto]):.2f} ms")
        assert min(delayed[proto]) >= 80  # every frame waits its 40 ms, each way
        assert d - b >= 80 and d - b < 80 + DELAY_SLACK_MS, (base[proto], delayed[proto])
        assert median(other[proto]) < 20  # router b has no delay

    pid = delay_line_pids(lab, "a")[0]
    lab.set_router("a", Router())
    assert not Path(f"/proc/{pid}").exists()
    assert lab.status().delay_lines == {} and lab.status().up
    assert f"p2pdiag-{lab.lab_id}-delay-a" not in lab_namespaces(lab.lab_id)
    again = round_trips(lab, "a")
    assert median(again["udp"]) < 20 and median(again["tcp"]) < 20, again


def test_delay_with_jitter_and_loss_together(make_lab, echo_server):
    lab = make_lab(a=Router(impairment=Impairment(delay_ms=40, jitter_ms=10)))
    echo_server(lab, "relay", 7000)
    rtt = round_trips(lab, "a")["udp"]
    print(f"\njitter 10 ms: udp {min(rtt):.1f}-{max(rtt):.1f} ms, median {median(rtt):.1f}")
    assert min(rtt) >= 60 and median(rtt) < 100 + DELAY_SLACK_MS, rtt  # each way 30-50 ms
    assert max(rtt) - min(rtt) >= 5, rtt  # the sum of two draws in ±10 ms: not all within 5 ms

    pid = delay_line_pids(lab, "a")[0]
    lab.set_router("a", Router(impairment=Impairment(delay_ms=40, loss_percent=50)))
    assert not Path(f"/proc/{pid}").exists() and len(delay_line_pids(lab, "a")) == 1  # a new line, new delay
    ping_ms(lab, "a")  # ARP through the delay line, so the count below is the router's loss alone
    done = lab.run("a", ["ping", "-q", "-c", "40", "-i", "0.01", "-W", "1", lab.address("relay")],
                   capture_output=True, text=True)
    received = int(re.search(r"(\d+) received", done.stdout).group(1))
    assert 0 < received < 40, done.stdout  # about 25 %: each of request and reply 50 %
    rtt_min = float(re.search(r"= ([\d.]+)/", done.stdout).group(1))
    assert rtt_min >= 80, done.stdout


def test_delay_line_is_stopped_by_down_and_its_failure_is_a_clear_error(make_lab, tmp_path):
    lab = make_lab(b=Router(impairment=Impairment(delay_ms=5)))
    (pid,) = delay_line_pids(lab, "b")
    assert ping_ms(lab, "b") >= 10
    line = DelayLine(lab.namespace("relay"), ("nosuch0", "nosuch1"), 5, 0, tmp_path / "delay.log")
    with pytest.raises(DelayLineError, match=r"exited with status 1: delay line failed: .*No such device"):
        line.start()
    lab.down()
    assert not Path(f"/proc/{pid}").exists()
    assert lab_namespaces(lab.lab_id) == []


def test_an_exception_inside_the_lab_still_tears_it_down(lab_machine):
    with pytest.raises(RuntimeError), Lab() as lab:
        sleeper = lab.exec("relay", ["sleep", "300"])
        raise RuntimeError("the test failed")
    assert sleeper.poll() is not None
    assert lab_namespaces(lab.lab_id) == []


def test_a_failed_up_removes_what_it_built(lab_machine):
    lab = Lab()
    taken = f"p2pdiag-{lab.lab_id}-b"  # the last namespace up() creates
    subprocess.run(["ip", "netns", "add", taken], check=True)
    try:
        with pytest.raises(LabError, match=f"create namespace {taken}"):
            lab.up()
        assert lab_namespaces(lab.lab_id) == []
    finally:
        teardown(lab.lab_id)


# Ctrl-C is Python's KeyboardInterrupt in the owner, as in a user's shell, even when this test runs
# with SIGINT ignored (a background job of a non-interactive shell: the child would inherit it)
OWNER = """
import json, signal, sys, time
from p2pdiag.lab import Lab, Topology
from p2pdiag.lab.runner import sigterm_as_exit
signal.signal(signal.SIGINT, signal.default_int_handler)
with sigterm_as_exit(), Lab(Topology.from_dict(json.loads(sys.argv[1]))) as lab:
    print(lab.lab_id, flush=True)
    time.sleep(60)
"""


def start_owner(topology: Topology | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, json.dumps((topology or Topology()).to_dict())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lab_id = proc.stdout.readline().strip()
    assert lab_id, proc.stderr.read()
    return proc, lab_id


def test_ctrl_c_or_sigterm_tears_down_and_a_killed_owners_lab_is_cleaned_up_later(make_lab):
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc, lab_id = start_owner()
        assert len(lab_namespaces(lab_id)) == 7
        proc.send_signal(sig)
        proc.wait(10)
        assert lab_namespaces(lab_id) == [], sig
        assert not Path(f"/run/p2pdiag/labs/{lab_id}").exists()

    mine = make_lab()  # a live lab of this process: not a leftover
    proc, lab_id = start_owner()
    proc.kill()
    proc.wait(10)
    coturn_pid = int(Path(f"/run/p2pdiag/labs/{lab_id}/turnserver.pid").read_text())
    labs = {info.lab_id: info for info in Lab.list_labs()}
    assert labs[lab_id].leftover and not labs[mine.lab_id].leftover
    removed = Lab.cleanup_leftovers()
    assert lab_id in removed and mine.lab_id not in removed
    assert lab_namespaces(lab_id) == [] and len(lab_namespaces(mine.lab_id)) == 7
    deadline = time.monotonic() + 5
    while Path(f"/proc/{coturn_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{coturn_pid}").exists()


def test_a_delay_line_goes_with_its_lab_on_ctrl_c_and_with_a_killed_owners_leftover(lab_machine):
    delayed = Topology(a=Router(impairment=Impairment(delay_ms=10)))
    for kill in (signal.SIGINT, signal.SIGKILL):
        proc, lab_id = start_owner(delayed)
        (pid,) = Lab.attach(lab_id).status().delay_lines["a"]["pids"]
        assert len(lab_namespaces(lab_id)) == 8  # and the delay namespace
        proc.send_signal(kill)
        proc.wait(10)
        if kill == signal.SIGKILL:
            assert Path(f"/proc/{pid}").exists()  # its own session: only teardown ends it
            assert lab_id in Lab.cleanup_leftovers()
        assert lab_namespaces(lab_id) == [], kill
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists(), kill


def test_detached_lab_survives_its_owner_and_attach_removes_it(lab_machine):
    script = "from p2pdiag.lab import Lab\nlab = Lab().up()\nlab.detach()\nprint(lab.lab_id)"
    lab_id = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout.strip()
    try:
        assert lab_id not in Lab.cleanup_leftovers()
        lab = Lab.attach(lab_id)
        assert lab.status().up and lab.status().coturn_running
        lab.down()
        assert lab_namespaces(lab_id) == []
    finally:
        teardown(lab_id)


def test_not_root_is_one_clear_line(lab_machine):
    """In a user namespace the euid is not 0: the lab refuses before touching anything."""
    script = "from p2pdiag.lab import Lab, NeedsRoot\ntry:\n    Lab().up()\nexcept NeedsRoot as e:\n    print(e)"
    done = subprocess.run(["unshare", "--user", sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == str(NeedsRoot()) + "\n"
    assert "needs root" in done.stdout
