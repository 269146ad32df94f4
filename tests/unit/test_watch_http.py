"""watch's HTTP server (`p2pdiag/watch/http.py`) against ordinary and hostile clients.

The server is the real one on a loopback socket; the clients are raw trio sockets, so a test sends
exactly the bytes it means (a 1 MB target, broken percent-encoding, a head sent a byte at a time).

The probes here are doubles: `returns(obs)`, `never_returns` and `raises_bug` are small coroutines
standing in for `run_probe`, because these tests are about the HTTP semantics of `/probe` (status,
timeout from the scrape header, probe_success 0 on failure). The real probes land from another
engineer's branch (watch/probes); the lead wires them into `serve`.

The last tests run the server as watch does, in a thread and trio loop of its own
(`serve_in_thread`), `/probe` reaching the test's loop through a `ProbeBridge`: /metrics answered
while that loop is held by synchronous work (with the old wiring, one loop, as the control that it
was not), probes run in that loop, cancelled at their budget or when it stops, and no thread left.

Waits are behaviour limits, not speed claims: the slow client's read timeout runs in virtual time
(trio's MockClock over an in-memory stream), and the socket tests only bound a hang.
"""

from __future__ import annotations

import itertools
import re
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from functools import partial
from urllib.parse import quote

import pytest
import trio
import trio.testing

from p2pdiag.errors import UsageError
from p2pdiag.watch.http import Limits, ProbeBridge, _Server, parse_target, serve, serve_in_thread
from p2pdiag.watch.metrics import WatchMetrics
from p2pdiag.watch.model import (
    Module,
    Observation,
    PeerTarget,
    Phase,
    RelayFacts,
    RelayTarget,
    UpgradeTarget,
)

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
RELAY = f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}"


def returns(obs: Observation):
    """A run_probe double that answers OBS at once (stands in for the real probes)."""
    seen: list = []

    async def run_probe(target):
        seen.append(target)
        return obs

    run_probe.seen = seen  # type: ignore[attr-defined]
    return run_probe


async def never_returns(target):
    """A run_probe double that hangs (a probe ignoring its own budget): the server's bound must end it."""
    await trio.sleep_forever()


async def raises_bug(target):
    """A run_probe double with a bug in it."""
    raise ZeroDivisionError("bug")


def relay_obs(ok: bool) -> Observation:
    return Observation(module=Module.RELAY, target=RELAY, ok=ok, started_unix_s=1.0e9, duration_s=0.25,
                       phases=(Phase("relay-dial", 0.01), Phase("reserve", 0.02)),
                       failed_phase=None if ok else "reserve", error_kind=None if ok else "RESERVATION_REFUSED",
                       relay=RelayFacts(agent="go-libp2p", hop_offered=True,
                                        reservation_status="OK" if ok else "RESERVATION_REFUSED",
                                        limit_duration_s=120, limit_data_bytes=131072))


async def exchange(port: int, raw: bytes, *, cap: int = 1 << 22) -> bytes:
    """Send RAW and end the sending side, read to the end (at most CAP bytes)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        try:
            await stream.send_all(raw)
            await stream.send_eof()
        except trio.BrokenResourceError:
            pass  # the server answered and closed before taking all of it
        out = b""
        while len(out) < cap:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            out += chunk
        return out


def status(resp: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    assert m, resp[:200]
    return int(m.group(1))


def body(resp: bytes) -> str:
    return resp.split(b"\r\n\r\n", 1)[1].decode()


def get(path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()


def run_server(test, *, run_probe=None, limits: Limits = Limits(), metrics: WatchMetrics | None = None):
    """Run TEST(port) against a server on an ephemeral loopback port; a hang fails in 30 s."""

    async def main():
        with trio.fail_after(30):  # a hang guard, not a speed claim
            async with trio.open_nursery() as nursery:
                port = await nursery.start(partial(serve, limits=limits), ("127.0.0.1", 0), metrics or WatchMetrics(),
                                           parse_target, run_probe or returns(relay_obs(True)))
                await test(port)
                nursery.cancel_scope.cancel()

    trio.run(main)


# --- ordinary requests ---------------------------------------------------------------------------


def test_metrics_index_and_unknown_paths():
    metrics = WatchMetrics()
    metrics.observe(relay_obs(True))

    async def test(port):
        resp = await exchange(port, get("/metrics"))
        assert status(resp) == 200
        assert b"Content-Type: text/plain; version=" in resp.split(b"\r\n\r\n")[0]
        assert f'p2pdiag_probe_success{{module="relay",target="{RELAY}"}} 1.0' in body(resp)
        assert b"Connection: close" in resp
        resp = await exchange(port, get("/"))
        assert status(resp) == 200 and "/probe?module=" in body(resp)
        resp = await exchange(port, get("/nope"))
        assert status(resp) == 404 and "no such page '/nope'" in body(resp)
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            resp = await exchange(port, f"{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
            assert status(resp) == 405, method
            assert b"Allow: GET" in resp

    run_server(test, metrics=metrics)


@pytest.mark.parametrize("refresh_s", [0.0, 0.05])
def test_metrics_show_what_was_observed_since(refresh_s):
    """Rendered for each request (0) or ahead of requests: a change shows, at most one refresh later."""
    metrics = WatchMetrics()
    line = f'p2pdiag_probe_success{{module="relay",target="{RELAY}"}} 0.0'

    async def test(port):
        assert line not in body(await exchange(port, get("/metrics")))
        metrics.observe(relay_obs(False))
        if refresh_s == 0:
            assert line in body(await exchange(port, get("/metrics")))
            return
        for _ in range(400):  # run_server's guard bounds the wait
            if line in body(await exchange(port, get("/metrics"))):
                break
            await trio.sleep(refresh_s / 2)
        else:
            raise AssertionError("the change never showed on /metrics")

    run_server(test, metrics=metrics, limits=Limits(metrics_refresh_s=refresh_s))


def test_rendering_ahead_follows_the_scrapes_in_virtual_time():
    """No scrape, no rendering; scrapes every 15 s get one rendering each, render_lead_s before the
    next is due; scrapes every 0.5 s get one each metrics_refresh_s at most."""
    server = _Server(WatchMetrics(), parse_target, None, Limits(metrics_refresh_s=2.0, render_lead_s=1.0))
    renders: list[float] = []

    async def render() -> bytes:
        renders.append(trio.current_time())
        server.rendered_changes, server.rendered_at = server.metrics.changes, trio.current_time()
        server.scraped = trio.Event()
        return b""

    server.render = render

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.render_ahead)
            server.metrics.changes += 1
            await trio.sleep(60)
            assert renders == []  # changes, but nobody asked
            for _ in range(4):  # t = 60, 75, 90, 105
                server.scrape()
                server.metrics.changes += 1
                await trio.sleep(15)
            assert [round(t) for t in renders] == [60, 89, 104, 119], renders  # the first at once
            renders.clear()
            for _ in range(20):  # t = 120 … 129.5: every half second
                server.scrape()
                server.metrics.changes += 1
                await trio.sleep(0.5)
            gaps = [b - a for a, b in itertools.pairwise(renders)]
            assert 4 <= len(renders) <= 6 and min(gaps) >= 2.0, renders
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_first_scrape_in_a_while_gets_an_exposition_rendered_for_it():
    """Rendered ahead only for scrapes: what was rendered at the start (or before a long pause) is
    never served once older than metrics_max_age_s."""
    server = _Server(WatchMetrics(), parse_target, None, Limits(metrics_max_age_s=5.0))

    async def main() -> None:
        server.rendered, server.rendered_at = b"old", trio.current_time()
        assert server.ready() == b"old"
        await trio.sleep(6)
        assert server.ready() is None  # the request renders anew
        await server.render()
        assert server.ready() not in (None, b"old")

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_probe_success_and_failure_answer_200_with_probe_success():
    async def test_ok(port):
        resp = await exchange(port, get(f"/probe?module=relay&target={quote(RELAY, safe='')}"))
        assert status(resp) == 200
        text = body(resp)
        assert "probe_success 1.0" in text
        assert 'probe_phase_duration_seconds{phase="reserve"} 0.02' in text
        assert "probe_relay_limit_duration_seconds 120.0" in text
        assert "target=" not in text  # per probe: Prometheus puts the target in `instance`

    async def test_fail(port):
        resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}"))
        assert status(resp) == 200
        assert "probe_success 0.0" in body(resp)
        assert 'probe_failure_info{kind="RESERVATION_REFUSED",phase="reserve"} 1.0' in body(resp)

    run_server(test_ok)
    run_server(test_fail, run_probe=returns(relay_obs(False)))


def test_probe_budget_comes_from_the_scrape_timeout_header():
    probe = returns(relay_obs(True))

    async def test(port):
        await exchange(port, get(f"/probe?module=relay&target={RELAY}", "X-Prometheus-Scrape-Timeout-Seconds: 4\r\n"))
        await exchange(port, get(f"/probe?module=relay&target={RELAY}"))
        await exchange(port, get(f"/probe?module=relay&target={RELAY}", "X-Prometheus-Scrape-Timeout-Seconds: 900\r\n"))
        resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}",
                                        "X-Prometheus-Scrape-Timeout-Seconds: soon\r\n"))
        assert status(resp) == 400 and "X-Prometheus-Scrape-Timeout-Seconds" in body(resp)
        resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}",
                                        "X-Prometheus-Scrape-Timeout-Seconds: nan\r\n"))
        assert status(resp) == 400

    run_server(test, run_probe=probe, limits=Limits(probe_timeout_max_s=30.0))
    budgets = [t.timeout_s for t in probe.seen]
    assert budgets == [3.5, 10.0, 30.0]  # header minus the 0.5 s offset; the default; the configured cap

    async def capped(port):
        await exchange(port, get(f"/probe?module=relay&target={RELAY}", "X-Prometheus-Scrape-Timeout-Seconds: 900\r\n"))

    async def main():
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, max_timeout_s=7.0), ("127.0.0.1", 0), WatchMetrics(),
                                       parse_target, probe)
            await capped(port)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert probe.seen[-1].timeout_s == 7.0  # serve(max_timeout_s=...) caps it too
    assert all(t.interval_s > t.timeout_s for t in probe.seen)  # a target's timeout stays below its interval
    assert all(isinstance(t, RelayTarget) and t.relay.peer_id == RELAY_ID for t in probe.seen)


def test_a_probe_past_its_budget_answers_probe_success_0():
    async def test(port):
        with trio.fail_after(10):
            resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}",
                                            "X-Prometheus-Scrape-Timeout-Seconds: 0.8\r\n"))
        assert status(resp) == 200
        assert "probe_success 0.0" in body(resp)
        assert 'probe_failure_info{kind="timeout",phase="unknown"} 1.0' in body(resp)

    run_server(test, run_probe=never_returns)


def test_a_probe_that_raises_is_a_500_not_a_failed_target():
    async def test(port):
        resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}"))
        assert status(resp) == 500
        assert "p2pdiag bug" in body(resp) and "probe_success" not in body(resp)
        assert status(await exchange(port, get("/metrics"))) == 200  # and the server goes on

    run_server(test, run_probe=raises_bug)


@pytest.mark.parametrize(("query", "reason"), [
    ("module=dns&target=x", "unknown module 'dns' (modules: relay, peer, upgrade, gossipsub)"),
    ("target=x", "module parameter missing"),
    ("module=relay", "target parameter missing"),
    ("module=relay&module=peer&target=x", "parameter 'module' given more than once"),
    ("module=relay&target=hello", "is not a multiaddr"),
    (f"module=relay&target={RELAY}/p2p-circuit/p2p/{PEER_ID}", "is itself a /p2p-circuit address"),
    ("module=gossipsub&target=topic", "gossipsub needs a config (two attach nodes); use watch CONFIG"),
    (f"module=upgrade&target={RELAY}", "is not a relayed address"),
    ("module=relay&target=%zz", "bad percent-encoding"),
    ("module=relay&target=%", "bad percent-encoding"),
    ("module=relay&target=%ff%fe", "not UTF-8"),
    ("&".join(f"k{i}=v" for i in range(40)), "too many query parameters"),
])
def test_bad_probe_requests_are_400_with_one_line(query, reason):
    async def test(port):
        resp = await exchange(port, get(f"/probe?{query}"))
        assert status(resp) == 400, resp
        assert reason in body(resp)
        assert body(resp).count("\n") == 1

    run_server(test)


# --- hostile clients -------------------------------------------------------------------------------


def test_a_huge_head_is_431_and_costs_no_more_than_the_cap():
    async def test(port):
        target = "/ip4/1.2.3.4/tcp/1/p2p/" + "A" * (1 << 20)  # a 1 MB target
        resp = await exchange(port, get(f"/probe?module=relay&target={target}"))
        assert status(resp) == 431 and "request head over 8192 bytes" in body(resp)
        resp = await exchange(port, get("/metrics", "X-Big: " + "b" * 20000 + "\r\n"))
        assert status(resp) == 431
        resp = await exchange(port, get("/metrics", "".join(f"X-{i}: v\r\n" for i in range(5000))))
        assert status(resp) == 431
        assert status(await exchange(port, get("/metrics"))) == 200

    run_server(test)


def test_garbage_and_broken_requests_get_a_clear_status():
    async def test(port):
        tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200) + b"\r\n\r\n"
        assert status(await exchange(port, tls_hello)) == 400
        assert status(await exchange(port, b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n")) == 400
        assert status(await exchange(port, "GET /m\u00e9trics HTTP/1.1\r\nHost: x\r\n\r\n".encode())) == 400
        assert await exchange(port, b"") == b""  # connected and left: nothing to answer
        assert status(await exchange(port, get("/metrics"))) == 200

    run_server(test)


def test_a_half_request_then_eof_is_answered_or_closed_and_the_server_lives():
    async def test(port):
        resp = await exchange(port, b"GET /metr")
        assert resp == b"" or status(resp) == 400
        assert status(await exchange(port, get("/metrics"))) == 200

    run_server(test)


def test_a_slow_client_gets_408_in_virtual_time():
    """A slowloris client (one byte every 2 s, never ending the head) is cut off at read_timeout_s.
    Virtual time: a memory stream and trio's MockClock, so the 5 s take no real time."""
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main():
        server = _Server(WatchMetrics(), parse_target, returns(relay_obs(True)), Limits(read_timeout_s=5.0))
        client, server_side = trio.testing.memory_stream_pair()
        answer = b""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.connection, server_side)
            t0 = trio.current_time()
            for ch in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
                try:
                    await client.send_all(bytes([ch]))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                await trio.sleep(2)
            while chunk := await client.receive_some(65536):
                answer += chunk
            elapsed = trio.current_time() - t0
        assert status(answer) == 408 and "not received within 5 s" in body(answer)
        assert 5.0 <= elapsed <= 7.0

    trio.run(main, clock=clock)


def test_a_slow_client_on_a_socket_frees_its_slot():
    """The same on a real socket with a short read timeout: the slot comes back (a hang guard bounds it)."""

    async def test(port):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET /metrics HTTP/1.1\r\n")
            resp = b""
            while chunk := await stream.receive_some(4096):
                resp += chunk
        assert status(resp) == 408
        assert status(await exchange(port, get("/metrics"))) == 200

    run_server(test, limits=Limits(read_timeout_s=0.3, max_connections=1))


def test_many_connections_past_the_cap_get_503_or_closed_and_slots_come_back():
    limits = Limits(read_timeout_s=2.0, max_connections=4)

    async def test(port):
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(4)]  # hold every slot, send nothing
        await trio.sleep(0.2)
        answers = [await exchange(port, get("/metrics")) for _ in range(3)]
        assert all(a == b"" or status(a) == 503 for a in answers), answers
        assert any(a and status(a) == 503 and "too many connections" in body(a) for a in answers)
        held = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(40)]  # past both caps: closed
        for s in idle + held:
            await s.aclose()
        with trio.fail_after(10):
            while True:  # the slots free as the idle ones close
                resp = await exchange(port, get("/metrics"))
                if resp and status(resp) == 200:
                    break
                await trio.sleep(0.05)

    run_server(test, limits=limits)


def test_memory_stays_bounded_over_many_hostile_requests():
    """Two hundred 1 MB heads cost what one does: nothing is kept past the cap."""

    async def test(port):
        await exchange(port, get("/metrics", "X-Big: " + "b" * (1 << 20) + "\r\n"))
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(200):
                resp = await exchange(port, get("/metrics", "X-Big: " + "b" * (1 << 20) + "\r\n"))
                assert status(resp) == 431
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert grown < 1 << 20, grown  # well below one head: no head is kept

    run_server(test)


# --- /probe targets from text ----------------------------------------------------------------------


def test_parse_target_per_module():
    relay = parse_target("relay", RELAY)
    assert isinstance(relay, RelayTarget) and relay.relay.peer_id == RELAY_ID and relay.name == RELAY
    direct = parse_target("peer", f"/ip4/10.0.0.2/tcp/4002/ws/p2p/{PEER_ID}")
    assert isinstance(direct, PeerTarget) and direct.peer_id == PEER_ID and direct.relays == ()
    assert direct.addrs == (f"/ip4/10.0.0.2/tcp/4002/ws/p2p/{PEER_ID}",)
    relayed = parse_target("peer", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}")
    assert isinstance(relayed, PeerTarget) and relayed.peer_id == PEER_ID and relayed.addrs == ()
    assert [r.peer_id for r in relayed.relays] == [RELAY_ID]
    upgrade = parse_target("upgrade", f"{RELAY}/p2p-circuit/webrtc/p2p/{PEER_ID}")
    assert isinstance(upgrade, UpgradeTarget) and upgrade.peer_id == PEER_ID
    assert [r.peer_id for r in upgrade.relays] == [RELAY_ID]
    for module, text, message in [
        ("peer", f"/ip4/10.0.0.2/udp/1/quic-v1/p2p/{PEER_ID}", "p2pdiag reaches peers over TCP or WebSocket"),
        ("peer", "/ip4/10.0.0.2/tcp/4002", "peer address '/ip4/10.0.0.2/tcp/4002' must end with /p2p/<peer id>"),
        ("peer", "/ip4/10.0.0.2/tcp/4002/p2p/" + "Q" * 200, "longer than 128 characters"),
        ("relay", "x" * (1 << 20), "is not a multiaddr"),
        ("gossipsub", "/ip4/1.2.3.4/tcp/1/p2p/" + PEER_ID, "gossipsub needs a config"),
        ("dns", RELAY, "unknown module"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            parse_target(module, text)


# --- the server in a thread of its own (watch's wiring), /probe through the bridge ------------------


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "p2pdiag-watch-http"}


def get_in_thread(port: int, path: str, out: dict, go: threading.Event | None = None) -> threading.Thread:
    """GET PATH from a thread of its own (urllib, no trio) once GO is set; OUT gets the status, the
    body and when (time.monotonic()) the request was sent and answered."""

    def run() -> None:
        if go is not None:
            go.wait(10)
        out["sent"] = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as r:
                out["status"], out["body"] = r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            out["status"], out["body"] = exc.code, exc.read().decode()
        out["answered"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def spin(seconds: float) -> float:
    """Hold the calling thread (its trio loop) busy SECONDS without a checkpoint; when it ended."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))
    return time.monotonic()


@pytest.mark.parametrize("wiring", ["thread", "same-loop"])
def test_metrics_are_answered_while_the_probe_loop_is_blocked(wiring):
    """watch's wiring (`serve_in_thread`): with the probes' loop held 2 s by synchronous work, a GET
    /metrics sent meanwhile is answered before the loop is free (in under a second). The same server
    in the probes' own loop (`serve`, as before) cannot answer until then: the control showing this
    test can tell the two apart."""
    metrics = WatchMetrics()
    metrics.observe(relay_obs(True))
    out: dict = {}

    async def blocked(port: int) -> float:
        go = threading.Event()
        client = get_in_thread(port, "/metrics", out, go)
        go.set()  # the client sends while this loop is held
        free_at = spin(2.0)
        await trio.to_thread.run_sync(client.join, 20)
        return free_at

    async def main() -> float:
        with trio.fail_after(30):  # a hang guard
            if wiring == "thread":
                async with serve_in_thread(("127.0.0.1", 0), metrics, parse_target, ProbeBridge()) as port:
                    return await blocked(port)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve, ("127.0.0.1", 0), metrics, parse_target, returns(relay_obs(True)))
                free_at = await blocked(port)
                nursery.cancel_scope.cancel()
                return free_at

    free_at = trio.run(main)
    assert out["sent"] < free_at - 1.0  # sent while the loop was held, with a second of it to go
    assert out["status"] == 200
    assert f'p2pdiag_probe_success{{module="relay",target="{RELAY}"}} 1.0' in out["body"]
    if wiring == "thread":
        assert out["answered"] < free_at, "answered only once the probes' loop was free"
        assert out["answered"] - out["sent"] < 1.0
    else:
        assert out["answered"] >= free_at  # the server in the blocked loop waited for it


def bridged(test, run_probe, limits: Limits = Limits()):
    """Run TEST(port, bridge) in a trio run that opened the bridge to RUN_PROBE, the server in its own
    thread; afterwards no server thread is left and the port is closed."""
    seen: dict = {}

    async def main():
        with trio.fail_after(30):  # a hang guard
            bridge = ProbeBridge(limits)
            async with serve_in_thread(("127.0.0.1", 0), WatchMetrics(), parse_target, bridge,
                                       limits=limits) as port:
                assert thread_names() == {"p2pdiag-watch-http"}
                seen["port"] = port
                async with bridge.open(run_probe):
                    await test(port, bridge)

    trio.run(main)
    assert thread_names() == set()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", seen["port"]), timeout=5).close()


def test_probe_runs_in_the_probes_loop_through_the_bridge():
    ran_in: list = []
    budgets: list = []

    async def probe(target):
        ran_in.append((threading.current_thread(), trio.lowlevel.current_trio_token()))
        budgets.append(target.timeout_s)
        return relay_obs(target.name == RELAY)

    async def test(port, bridge):
        resp = await exchange(port, get(f"/probe?module=relay&target={quote(RELAY, safe='')}",
                                        "X-Prometheus-Scrape-Timeout-Seconds: 4\r\n"))
        assert status(resp) == 200 and "probe_success 1.0" in body(resp)
        assert 'probe_phase_duration_seconds{phase="reserve"} 0.02' in body(resp)
        assert ran_in == [(threading.current_thread(), trio.lowlevel.current_trio_token())]
        resp = await exchange(port, get("/probe?module=dns&target=x"))
        assert status(resp) == 400 and "unknown module 'dns'" in body(resp)

    bridged(test, probe)
    assert budgets == [3.5]  # the scrape's header less the offset, as in one loop


def test_a_bridged_probe_past_its_budget_is_cancelled_in_the_probes_loop():
    ended: list = []

    async def hangs(target):
        try:
            await trio.sleep_forever()
        finally:
            ended.append(trio.current_time())

    async def test(port, bridge):
        t0 = trio.current_time()
        resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}",
                                        "X-Prometheus-Scrape-Timeout-Seconds: 0.8\r\n"))
        assert status(resp) == 200
        assert 'probe_failure_info{kind="timeout",phase="unknown"} 1.0' in body(resp)
        assert "probe_success 0.0" in body(resp)
        assert len(ended) == 1  # ended by the time it was answered, not left running
        assert ended[0] - t0 < 0.8 + 0.5  # its budget (0.3 s) and the grace, with room for the round trip

    bridged(test, hangs)


def test_a_bridged_probe_that_raises_is_a_500_and_max_probes_holds():
    release, running = trio.Event(), trio.Event()

    async def probe(target):
        if "4002" in target.name:
            raise ZeroDivisionError("bug")
        running.set()
        await release.wait()
        return relay_obs(True)

    async def test(port, bridge):
        bug = RELAY.replace("4001", "4002")
        resp = await exchange(port, get(f"/probe?module=relay&target={bug}"))
        assert status(resp) == 500 and "p2pdiag bug" in body(resp)
        answers: list = []

        async def one():
            answers.append(await exchange(port, get(f"/probe?module=relay&target={RELAY}")))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            await running.wait()
            resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}"))
            assert status(resp) == 503 and "1 probes already running" in body(resp)
            release.set()
        assert status(answers[0]) == 200 and "probe_success 1.0" in body(answers[0])

    bridged(test, probe, Limits(max_probes=1))


def test_when_the_probes_loop_stops_probe_is_503_at_once_and_metrics_still_answer():
    """The bridge closed (watch stopping, the server lingering): a probe running is cancelled and
    answered 503 at once, a later /probe is 503 too, /metrics still 200; before it opens, 503 too."""
    cancelled: list = []
    running = trio.Event()

    async def hangs(target):
        running.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(target.name)

    async def main():
        with trio.fail_after(30):
            bridge = ProbeBridge()
            async with serve_in_thread(("127.0.0.1", 0), WatchMetrics(), parse_target, bridge) as port:
                resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}"))
                assert status(resp) == 503 and "watch is starting" in body(resp)
                answers: list = []


                async def one():
                    answers.append(await exchange(port, get(f"/probe?module=relay&target={RELAY}")))

                async with trio.open_nursery() as nursery, bridge.open(hangs):  # the bridge closes first
                    nursery.start_soon(one)
                    await running.wait()  # the probe runs (its budget: 10 s)
                    t0 = trio.current_time()
                assert cancelled == [RELAY]
                assert status(answers[0]) == 503 and "watch is stopping" in body(answers[0])
                assert trio.current_time() - t0 < 2.0  # answered at the stop, not at the end of its budget
                resp = await exchange(port, get(f"/probe?module=relay&target={RELAY}"))
                assert status(resp) == 503 and "watch is stopping" in body(resp)
                assert status(await exchange(port, get("/metrics"))) == 200

    trio.run(main)
    assert thread_names() == set()


def test_stopping_joins_the_thread_even_with_clients_holding_connections():
    async def main():
        with trio.fail_after(30):
            async with serve_in_thread(("127.0.0.1", 0), WatchMetrics(), parse_target, ProbeBridge()) as port:
                idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
                half = await trio.open_tcp_stream("127.0.0.1", port)
                await half.send_all(b"GET /metr")
                await trio.sleep(0.2)
                t0 = trio.current_time()
            assert trio.current_time() - t0 < 3.0  # cancelled, not waiting out the 5 s read timeout
            assert thread_names() == set()
            for s in [*idle, half]:
                await s.aclose()

    trio.run(main)


def test_a_port_taken_is_a_usage_error_and_leaves_no_thread():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]

    async def main():
        async with serve_in_thread(("127.0.0.1", port), WatchMetrics(), parse_target, ProbeBridge()):
            raise AssertionError("it listened on a port taken")

    try:
        with pytest.raises(UsageError, match=rf"^cannot serve /metrics on 127\.0\.0\.1:{port}: .+"):
            trio.run(main)
    finally:
        taken.close()
    assert thread_names() == set()


def test_watch_on_a_port_taken_exits_2_with_one_line():
    """`p2pdiag watch --metrics` on a port another process holds: a usage error, before any probe."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        out = subprocess.run([sys.executable, "-m", "p2pdiag", "watch", "--relay", RELAY, "--metrics",
                              f"127.0.0.1:{port}", "--duration", "20"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, check=False)
    finally:
        taken.close()
    assert out.returncode == 2, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("p2pdiag: error: ")]
    assert errors == [f"p2pdiag: error: cannot serve /metrics on 127.0.0.1:{port}: Address already in use"], out.stderr
    assert "Traceback" not in out.stderr
