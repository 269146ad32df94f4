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

`watch` runs the server in an OS thread of its own with a trio loop of its own (`serve_in_thread`),
so an answer never waits for the probes' loop to get round to it: `/metrics` is the exposition
rendered ahead for the scrapes (`_Server.render_ahead`, in a worker thread; prometheus_client is
thread-safe).
`/probe`'s probes still run in the probes' loop, where their py-libp2p host lives: `ProbeBridge`
hands each one over through that loop's trio token and hands its Observation back, the scrape's
budget and `max_probes` counted on the server's side; cancelled there (the budget, the server
stopping), it is cancelled in the probes' loop too; once that loop stops probing (the bridge
closed), `/probe` is a 503. `serve` itself serves in whatever trio loop awaits it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
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
    # 100 ms to render on a busy machine; rendered ahead, a scrape takes what sending the bytes takes.
    # It is rendered only for scrapes: `render_lead_s` before the next is due, as the last two were
    # spaced, so a scrape sees data about that old, and a Prometheus scraping every 15 s costs one
    # rendering each 15 s, not one each 2 s.
    metrics_refresh_s: float = 2.0
    render_lead_s: float = 1.0
    metrics_max_age_s: float = 5.0  # an exposition older than this (the first scrape in a while) is rendered anew


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
        self.rendered_at = -math.inf
        self.scrapes: list[float] = []  # when the last two /metrics requests came
        self.scraped = trio.Event()  # a /metrics request came since the last rendering
        self.arrived = trio.Event()  # one came since render_ahead last looked

    async def render(self) -> bytes:
        async with self.exposition:
            changes = self.metrics.changes
            body = await trio.to_thread.run_sync(generate_latest, self.metrics.registry)
        self.rendered, self.rendered_changes, self.rendered_at = body, changes, trio.current_time()
        self.scraped = trio.Event()
        return body

    def next_render_at(self) -> float:
        """`render_lead_s` before the next scrape is due (spaced as the last two were), and never
        sooner than `metrics_refresh_s` after the last rendering."""
        soonest = self.rendered_at + self.limits.metrics_refresh_s
        if len(self.scrapes) < 2:
            return soonest
        return max(soonest, 2 * self.scrapes[-1] - self.scrapes[-2] - self.limits.render_lead_s)

    async def render_ahead(self) -> None:
        while True:
            await self.scraped.wait()  # no scrape, no rendering
            while trio.current_time() < (due := self.next_render_at()):
                self.arrived = trio.Event()
                with trio.move_on_at(due):
                    await self.arrived.wait()  # a scrape sooner than the last spacing: due sooner
            if self.metrics.changes != self.rendered_changes:
                await self.render()
            else:
                self.scraped = trio.Event()

    def ready(self) -> bytes | None:
        """The exposition rendered ahead, when there is one at most `metrics_max_age_s` old."""
        if self.limits.metrics_refresh_s <= 0 or self.rendered is None:
            return None
        return self.rendered if trio.current_time() - self.rendered_at <= self.limits.metrics_max_age_s else None

    def scrape(self) -> None:
        self.scrapes = [*self.scrapes[-1:], trio.current_time()]
        self.scraped.set()
        self.arrived.set()

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
            self.scrape()
            body = self.ready() or await self.render()
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
        except _Reply:  # the bridge's 503: the probes' loop is stopping
            raise
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



# --- the server in a thread of its own, /probe run in the probes' loop ------------------------------

STARTING = "watch is starting: no probes yet; try again"
STOPPING = "watch is stopping: no more probes"


@contextlib.asynccontextmanager
async def serve_in_thread(listen: tuple[str, int], metrics: WatchMetrics, parse_target: ParseTarget,
                          run_probe: RunProbe, *, max_timeout_s: float | None = None, limits: Limits = Limits(),
                          stop_timeout_s: float = 10.0) -> AsyncIterator[int]:
    """`serve` in an OS thread of its own, in a trio loop of its own, for the block's length; the
    block gets the bound port. RUN_PROBE runs in the server's loop: give it a `ProbeBridge` to run
    probes in the caller's. Not listening (a port taken, an unknown host) is a UsageError, raised
    before the block. When the block ends the server is cancelled and its thread joined (at most
    STOP_TIMEOUT_S, shielded: a connection closing takes at most a second). A bug that ends the
    server cancels the block and is raised after it."""
    host, port = listen
    thread = _ServerThread(partial(serve, listen, metrics, parse_target, run_probe, max_timeout_s=max_timeout_s,
                                   limits=limits))
    thread.start()
    try:
        with trio.CancelScope(shield=True):  # binding and the first rendering: moments
            await thread.started.wait()
        if thread.port is None:
            if isinstance(thread.error, OSError):
                reason = thread.error.strerror or str(thread.error)
                raise UsageError(f"cannot serve /metrics on {host}:{port}: {reason}") from None
            raise RuntimeError("watch's HTTP server did not start") from thread.error
        with thread.failed:
            yield thread.port
    finally:
        thread.stop()
        with trio.CancelScope(shield=True), trio.move_on_after(stop_timeout_s):
            await thread.ended.wait()
        if thread.ended.is_set():
            thread.thread.join()
        else:  # it is a daemon thread: the process still exits
            log.error("watch http: the server's thread did not end within %g s", stop_timeout_s)
    if thread.failed.cancelled_caught:
        raise RuntimeError("watch's HTTP server stopped") from thread.error


class _ServerThread:
    """One trio run of SERVE (called with task_status) in a daemon thread. Its state is written by
    that thread and read by the caller's loop once `started` (or `ended`) is set there."""

    def __init__(self, serve: Callable[..., Awaitable[None]]) -> None:
        self.serve = serve
        self.caller = trio.lowlevel.current_trio_token()
        self.started, self.ended = trio.Event(), trio.Event()  # the caller's
        self.failed = trio.CancelScope()  # the caller's block, cancelled if the server ends by a bug
        self.port: int | None = None
        self.error: BaseException | None = None
        self.token: trio.lowlevel.TrioToken | None = None  # the server's loop, once listening
        self.cancel: Callable[[], None] | None = None
        self.thread = threading.Thread(target=self._run, name="p2pdiag-watch-http", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """From the caller's loop: end the server (nothing if it never listened or has ended)."""
        if self.token is not None and self.cancel is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self.cancel)

    def _tell(self, fn: Callable[[], object]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self.caller.run_sync_soon(fn)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # it ends this thread: the caller raises it
            self.error = exc
            if self.port is not None:
                log.error("watch http: the server stopped", exc_info=exc)
                self._tell(self.failed.cancel)
        finally:
            self._tell(self.started.set)
            self._tell(self.ended.set)

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            try:
                port = await nursery.start(self.serve)  # raised before it listens: not wrapped
            except OSError as exc:
                self.error = exc
                return
            self.token, self.cancel = trio.lowlevel.current_trio_token(), nursery.cancel_scope.cancel
            self.port = port
            self._tell(self.started.set)


class ProbeBridge:
    """The `run_probe` of a server in a loop of its own (`serve_in_thread`) that runs each probe in
    the loop that opened the bridge (`open`), where the probes' py-libp2p host lives.

    The server's loop asks through that loop's trio token and waits on an event of its own, which the
    probes' loop sets through the server loop's token when the probe has ended; no thread waits.
    Cancelled in the server's loop (the scrape's budget, the server stopping), the probe is cancelled
    in the probes' loop too, and the server waits up to what the scrape's offset leaves past the
    grace for it to end, so `max_probes` counts it until it has; the probes' loop also holds it to its
    budget and the grace on its own. Before the bridge is open a request is a 503 (`STARTING`);
    once it is closed the running probes are cancelled and every request is a 503 (`STOPPING`)."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.grace_s = limits.probe_grace_s
        self.settle_s = max(0.0, limits.probe_timeout_offset_s - limits.probe_grace_s)
        self._token: trio.lowlevel.TrioToken | None = None  # the probes' loop, while open
        self._nursery: trio.Nursery | None = None  # touched in the probes' loop only
        self._run_probe: RunProbe | None = None
        self._closed = False

    def _unavailable(self) -> _Reply:
        return _Reply(503, STOPPING if self._closed else STARTING)

    @contextlib.asynccontextmanager
    async def open(self, run_probe: RunProbe) -> AsyncIterator[None]:
        """In the probes' loop: for the block's length `/probe` runs RUN_PROBE here."""
        async with trio.open_nursery() as nursery:
            self._run_probe, self._nursery = run_probe, nursery
            self._token = trio.lowlevel.current_trio_token()
            try:
                yield
            finally:
                self._closed = True
                self._token = self._nursery = None
                nursery.cancel_scope.cancel()

    async def __call__(self, target: AnyTarget) -> Observation | None:
        """In the server's loop: TARGET probed in the probes' loop; None if cancelled there first."""
        token = self._token
        if token is None:
            raise self._unavailable()
        call = _Call(target, trio.lowlevel.current_trio_token())
        try:
            token.run_sync_soon(self._start, call)
        except trio.RunFinishedError:
            raise _Reply(503, STOPPING) from None
        try:
            await call.done.wait()
        finally:
            if not call.done.is_set():  # cancelled here: there too, and it is waited for a little
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(call.cancel)
                with trio.CancelScope(shield=True), trio.move_on_after(self.settle_s):
                    await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.obs

    def _start(self, call: _Call) -> None:  # in the probes' loop
        if self._nursery is None:
            call.finish(None, self._unavailable())
            return
        call.scope = trio.CancelScope(deadline=trio.current_time() + call.target.timeout_s + self.grace_s)
        self._nursery.start_soon(self._probe, call)

    async def _probe(self, call: _Call) -> None:  # in the probes' loop
        assert call.scope is not None and self._run_probe is not None
        obs, error = None, _Reply(503, STOPPING)  # what stays if the bridge's closing cancels it
        try:
            with call.scope:
                try:
                    obs, error = await self._run_probe(call.target), None
                except Exception as exc:  # noqa: BLE001  (a bug: the server's side logs it, answers 500)
                    error = exc
            if call.scope.cancelled_caught:  # its budget ran out, or the server's side gave up
                error = None
        finally:
            call.finish(obs, error)


class _Call:
    """One /probe handed from the server's loop to the probes' loop."""

    def __init__(self, target: AnyTarget, server: trio.lowlevel.TrioToken) -> None:
        self.target = target
        self.server = server
        self.done = trio.Event()  # the server's
        self.scope: trio.CancelScope | None = None  # the probes' loop's
        self.obs: Observation | None = None
        self.error: BaseException | None = None

    def cancel(self) -> None:  # in the probes' loop
        if self.scope is not None:
            self.scope.cancel()

    def finish(self, obs: Observation | None, error: BaseException | None) -> None:  # in the probes' loop
        self.obs, self.error = obs, error
        with contextlib.suppress(trio.RunFinishedError):  # the server's loop has ended: no one waits
            self.server.run_sync_soon(self.done.set)


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
