"""watch's HTTP endpoint: `/metrics`, a blackbox-exporter-style `/probe`, and an index at `/`.

HTTP/1.1 through h11 (the protocol, no I/O) on trio streams, one request per connection
(`Connection: close`). Everything a client can make it spend is bounded (`Limits`): the request
head (431 over `head_bytes`), how long a client may take to send it (408 after `read_timeout_s`,
so a slowloris client does not keep a slot), how long an answer may take to be taken
(`write_timeout_s`), how many connections are served at once (past `max_connections` a connection
gets a 503 and is closed, and past twice that it is closed unanswered) and how many `/probe`
requests run at once (503 past `max_probes`).

`/probe?module=M&target=T` (modules named as `Module` names them) parses T with the injected
`parse_target`, runs the injected `run_probe` under the scrape's own timeout and answers 200 with
a registry made for this one request (`metrics.probe_registry`), `probe_success 0` when the probe
failed or ran out of time, as Prometheus' blackbox_exporter does. An unknown module or a bad target
is a 400 with one line saying why. A probe that raises is a bug in p2pdiag, never the target's
failure: 500, and the traceback goes to the log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import h11
import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from p2pdiag.errors import UsageError
from p2pdiag.targets import parse_relay, shown
from p2pdiag.targets import parse_target as parse_dial_target
from p2pdiag.watch.metrics import WatchMetrics, probe_registry
from p2pdiag.watch.model import AnyTarget, Module, Observation, PeerTarget, RelayTarget, UpgradeTarget

log = logging.getLogger(__name__)

ParseTarget = Callable[[str, str], AnyTarget]
RunProbe = Callable[[AnyTarget], Awaitable[Observation]]

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
MODULES = tuple(m.value for m in Module)
_Answer = tuple[int, str, bytes, tuple[tuple[str, str], ...]]  # status, content type, body, more headers


@dataclass(frozen=True, slots=True)
class Limits:
    head_bytes: int = 8 * 1024  # request line and headers together
    read_timeout_s: float = 5.0  # from accept to the end of the request head
    write_timeout_s: float = 10.0  # to hand the answer to a slow reader
    max_connections: int = 32  # served at once
    max_probes: int = 8  # /probe requests running at once
    probe_timeout_default_s: float = 10.0  # with no scrape timeout header (blackbox_exporter's default)
    probe_timeout_max_s: float = 60.0  # the most a scrape's header may ask for
    probe_timeout_offset_s: float = 0.5  # left for the answer to travel back within the scrape timeout
    probe_grace_s: float = 0.25  # past the probe's own budget before it is cancelled (below the offset)
    # /metrics serves an exposition rendered ahead, in a worker thread, at most this often when the
    # metrics changed (0: rendered for each request). With 200 targets prometheus_client takes over
    # 100 ms to render on a busy machine; rendered ahead, a scrape takes what sending the bytes takes
    # and sees data at most this old, for a few percent of a core.
    metrics_refresh_s: float = 2.0


class _Reply(Exception):
    """Answer with STATUS and a one-line reason (a client's mistake, not a bug)."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


# --- /probe targets from their text ------------------------------------------------------------


def parse_target(module: str, text: str) -> AnyTarget:
    """The target a `/probe` request names, as the CLI would take it (UsageError on bad input).

    relay: the relay's own multiaddr with /p2p/RELAY_ID. peer: a direct multiaddr ending
    /p2p/PEER_ID, or a relayed `…/p2p/RELAY_ID/p2p-circuit/p2p/PEER_ID` whose relay is then dialed
    through. upgrade: a relayed address as `dial` takes it. gossipsub needs two attach nodes and a
    topic: only a config names them. The target's interval and timeout are placeholders here;
    `serve` sets them from the request."""
    base = {"name": text, "interval_s": 60.0, "timeout_s": 10.0}
    if module == Module.RELAY.value:
        # a one-off probe makes a reservation to see it granted; nothing holds it between probes
        return RelayTarget(relay=parse_relay(text), reserve=False, **base)
    if module == Module.PEER.value:
        if "/p2p-circuit" in text:
            dial = parse_dial_target(text, [])
            return PeerTarget(peer_id=dial.peer_id, relays=dial.relays, **base)
        return PeerTarget(peer_id=_direct_peer_id(text), addrs=(text,), **base)
    if module == Module.UPGRADE.value:
        dial = parse_dial_target(text, [])
        return UpgradeTarget(peer_id=dial.peer_id, relays=dial.relays, **base)
    if module == Module.GOSSIPSUB.value:
        raise UsageError("gossipsub needs a config (two attach nodes); use watch CONFIG")
    raise UsageError(f"unknown module {shown(module)} (modules: {', '.join(MODULES)})")


def _direct_peer_id(text: str) -> str:
    """A peer's direct address has the shape of a relay's (TCP or WebSocket, then /p2p/ID): read as
    one, with the messages worded for a peer."""
    try:
        return parse_relay(text).peer_id
    except UsageError as exc:
        raise UsageError(str(exc).replace("relay address", "peer address").replace("relay peer id", "peer id")
                         .replace("reaches relays", "reaches peers")
                         .replace("relay's own address", "peer's direct address")) from None


# --- the server ----------------------------------------------------------------------------------


async def serve(listen: tuple[str, int], metrics: WatchMetrics, parse_target: ParseTarget, run_probe: RunProbe,
                task_status=trio.TASK_STATUS_IGNORED, *, max_timeout_s: float | None = None,
                limits: Limits = Limits()) -> None:
    """Serve until cancelled on LISTEN (host, port; port 0 picks one). `task_status.started`
    gets the bound port. MAX_TIMEOUT_S caps a /probe's budget (`limits.probe_timeout_max_s`)."""
    if max_timeout_s is not None:
        limits = dataclasses.replace(limits, probe_timeout_max_s=max_timeout_s)
    host, port = listen
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    server = _Server(metrics, parse_target, run_probe, limits)
    async with trio.open_nursery() as nursery:
        if limits.metrics_refresh_s > 0:
            await server.render()
            nursery.start_soon(server.render_ahead)
        task_status.started(bound)
        for listener in listeners:
            nursery.start_soon(server.accept_loop, listener, nursery)


class _Server:
    def __init__(self, metrics: WatchMetrics, parse_target: ParseTarget, run_probe: RunProbe, limits: Limits) -> None:
        self.metrics = metrics
        self.parse_target = parse_target
        self.run_probe = run_probe
        self.limits = limits
        self.active = 0
        self.refusing = 0
        self.probes = trio.CapacityLimiter(limits.max_probes)
        self.exposition = trio.CapacityLimiter(1)  # one /metrics rendering at a time, off the event loop
        self.rendered: bytes | None = None
        self.rendered_changes = -1  # metrics.changes when `rendered` was made

    async def render(self) -> bytes:
        async with self.exposition:
            changes = self.metrics.changes
            body = await trio.to_thread.run_sync(generate_latest, self.metrics.registry)
        self.rendered, self.rendered_changes = body, changes
        return body

    async def render_ahead(self) -> None:
        while True:
            await trio.sleep(self.limits.metrics_refresh_s)
            if self.metrics.changes != self.rendered_changes:
                await self.render()

    async def accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # EMFILE and kin: wait for descriptors to free up
                    log.warning("watch http: accept failed: %s", exc)
                    await trio.sleep(0.1)
                    continue
                if self.active < self.limits.max_connections:
                    self.active += 1
                    nursery.start_soon(self._serve_counted, stream)
                elif self.refusing < self.limits.max_connections:
                    self.refusing += 1
                    nursery.start_soon(self._refuse, stream)
                else:
                    stream.socket.close()

    async def _serve_counted(self, stream: trio.abc.Stream) -> None:
        try:
            await self.connection(stream)
        finally:
            self.active -= 1

    async def _refuse(self, stream: trio.abc.Stream) -> None:
        try:
            await self.connection(stream, refuse=True)
        finally:
            self.refusing -= 1

    async def connection(self, stream: trio.abc.Stream, refuse: bool = False) -> None:
        """One request on STREAM, answered, then the stream closed; with REFUSE, a 503 after a head
        read in at most a second. Never raises for a client's doing."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.head_bytes)
        try:
            request = await self._read_head(stream, conn, min(1.0, self.limits.read_timeout_s) if refuse else None)
            if request is None:
                return
            if refuse:
                raise _Reply(503, "too many connections; try again")
            status, ctype, body, headers = await self._respond(request)
        except _Reply as r:
            status, ctype, body, headers = r.status, "text/plain; charset=utf-8", (r.reason + "\n").encode(), r.headers
        await self._answer(stream, conn, status, ctype, body, headers)

    async def _read_head(self, stream: trio.abc.Stream, conn: h11.Connection,
                         timeout_s: float | None = None) -> h11.Request | None:
        timeout_s = self.limits.read_timeout_s if timeout_s is None else timeout_s
        with trio.move_on_after(timeout_s):
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    status = exc.error_status_hint
                    if status == 431:
                        raise _Reply(431, f"request head over {self.limits.head_bytes} bytes") from None
                    raise _Reply(status, f"bad request: {exc}") from None
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive_some(4096)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        await _close(stream)
                        return None
                    conn.receive_data(data)  # b"" is the end: h11 then says ConnectionClosed or raises
                    continue
                if isinstance(event, h11.Request):
                    return event
                if isinstance(event, h11.ConnectionClosed):  # connected and left without a word
                    await _close(stream)
                    return None
        raise _Reply(408, f"request head not received within {timeout_s:g} s")

    async def _respond(self, request: h11.Request) -> _Answer:
        if request.method != b"GET":
            raise _Reply(405, f"method {request.method.decode('ascii', 'replace')} not allowed; use GET",
                         (("Allow", "GET"),))
        raw = request.target.decode("ascii", "replace")
        if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
            raise _Reply(400, "bad percent-encoding in the request target")
        parts = urlsplit(raw)
        try:
            query = parse_qsl(parts.query, keep_blank_values=True, errors="strict", max_num_fields=16)
        except UnicodeDecodeError:
            raise _Reply(400, "the query is not UTF-8 once percent-decoded") from None
        except ValueError:
            raise _Reply(400, "too many query parameters") from None
        if parts.path == "/metrics":
            body = self.rendered if self.limits.metrics_refresh_s > 0 and self.rendered else await self.render()
            return 200, CONTENT_TYPE_LATEST, body, ()
        if parts.path == "/probe":
            return await self._probe(query, request.headers)
        if parts.path == "/":
            return 200, "text/html; charset=utf-8", _INDEX, ()
        raise _Reply(404, f"no such page {shown(parts.path)}; see / for the pages")

    async def _probe(self, query: list[tuple[str, str]], headers) -> _Answer:
        params: dict[str, str] = {}
        for key, value in query:
            if key in params:
                raise _Reply(400, f"parameter {key!r} given more than once")
            params[key] = value
        module = params.get("module")
        if not module:
            raise _Reply(400, f"module parameter missing (modules: {', '.join(MODULES)})")
        if module not in MODULES:
            raise _Reply(400, f"unknown module {shown(module)} (modules: {', '.join(MODULES)})")
        text = params.get("target")
        if not text:
            raise _Reply(400, "target parameter missing")
        try:
            target = self.parse_target(module, text)
        except UsageError as exc:
            raise _Reply(400, str(exc).splitlines()[0] if str(exc) else "bad target") from None
        budget = self._budget(headers)
        target = dataclasses.replace(target, timeout_s=budget,
                                     interval_s=max(target.interval_s, budget + self.limits.probe_timeout_offset_s))
        try:
            self.probes.acquire_nowait()
        except trio.WouldBlock:
            raise _Reply(503, f"{self.limits.max_probes} probes already running; try again") from None
        try:
            obs = await self._run(target, budget)
        finally:
            self.probes.release()
        return 200, CONTENT_TYPE_LATEST, generate_latest(probe_registry(obs)), ()

    def _budget(self, headers) -> float:
        lim = self.limits
        given = [v for k, v in headers if k.lower() == TIMEOUT_HEADER.lower().encode()]
        if not given:
            return min(lim.probe_timeout_default_s, lim.probe_timeout_max_s)
        try:
            seconds = float(given[0].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise _Reply(400, f"{TIMEOUT_HEADER} is not a number of seconds") from None
        if not math.isfinite(seconds) or seconds <= 0:
            raise _Reply(400, f"{TIMEOUT_HEADER} must be a positive number of seconds")
        budget = seconds - lim.probe_timeout_offset_s
        if budget <= 0:
            budget = seconds / 2
        return min(budget, lim.probe_timeout_max_s)

    async def _run(self, target: AnyTarget, budget: float) -> Observation:
        started, t0 = time.time(), trio.current_time()
        obs: Observation | None = None
        try:
            with trio.move_on_after(budget + self.limits.probe_grace_s):
                obs = await self.run_probe(target)
        except Exception as exc:  # a probe returns an Observation for every failure: this is a bug
            log.exception("watch /probe: the %s probe of %s raised", target.module.value, target.name)
            raise _Reply(500, f"p2pdiag bug: the {target.module.value} probe raised "
                              f"{type(exc).__name__}; see watch's log") from None
        if obs is None:
            return Observation(module=target.module, target=target.name, ok=False, started_unix_s=started,
                               duration_s=trio.current_time() - t0, error_kind="timeout", timed_out=True,
                               error=f"no result within the scrape's budget ({budget:g} s)")
        return obs

    async def _answer(self, stream: trio.abc.Stream, conn: h11.Connection, status: int, ctype: str, body: bytes,
                      headers: tuple[tuple[str, str], ...] = (), timeout_s: float | None = None) -> None:
        head = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Connection", "close"), *headers]
        try:
            data = conn.send(h11.Response(status_code=status, headers=head))
        except h11.LocalProtocolError:  # the request was so broken h11 will not answer it: just close
            data = b""
        if data:
            with contextlib.suppress(h11.LocalProtocolError):  # after HEAD h11 keeps the answer bodiless
                data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        with trio.move_on_after(self.limits.write_timeout_s if timeout_s is None else timeout_s):
            try:
                if data:
                    await stream.send_all(data)
                if isinstance(stream, trio.SocketStream):
                    await stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        await _close(stream)


async def _close(stream: trio.abc.Stream) -> None:
    with (trio.CancelScope(shield=True), trio.move_on_after(1),
          contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError)):
        await stream.aclose()


_INDEX = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>p2pdiag watch</title></head>
<body><h1>p2pdiag watch</h1>
<ul>
<li><a href="/metrics">/metrics</a>: every watched target's series (Prometheus text format)</li>
<li>/probe?module=MODULE&amp;target=TARGET: one probe now, blackbox_exporter style; modules relay, peer, upgrade
(gossipsub targets need a config)</li>
</ul>
<p>Series, the /probe contract and the alerting rules: docs/watch-metrics.md</p>
</body></html>
"""
