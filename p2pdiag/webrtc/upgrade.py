"""The WebRTC private-to-private upgrade of a relayed connection (libp2p/specs webrtc/webrtc.md).

    initiator (dialer)                               responder (listener)
    opens /webrtc-signaling/0.0.1 on the relayed connection
    creates the "init" data channel, gathers
    SDP_OFFER (every candidate inline), ICE_CANDIDATE null  ->
                                                  <-  SDP_ANSWER, ICE_CANDIDATE null
    ICE_CANDIDATE ... both ways until connected (js trickles; aiortc puts all in the SDP)
    ICE, DTLS, SCTP; "init" open, then closed      the first data channel seen
    closes the signaling stream                    closes the signaling stream

On failure each side resets the signaling stream. There is no Noise handshake: the relayed
connection authenticated both peers and carried the DTLS fingerprints. Network failures never
raise: they are recorded (`WebRTCUpgradeFailed` names the step and why) and the result is None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import trio

from p2pdiag.probes import net
from p2pdiag.trace.events import (
    CandidateSource,
    Closer,
    DescriptionSignaled,
    DtlsSetup,
    DtlsState,
    EndOfCandidatesSent,
    ErrorKind,
    IceConnectionState,
    PeerConnectionState,
    RemoteCandidateRejected,
    SignalingFailed,
    SignalingMessageType,
    SignalingStage,
    SignalingStreamEnded,
    SignalingStreamOpened,
    UpgradeRole,
    UpgradeStep,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
    WebRTCUpgradeSucceeded,
)
from p2pdiag.trace.recorder import Recorder
from p2pdiag.webrtc import ice as ice_internals
from p2pdiag.webrtc import signaling
from p2pdiag.webrtc.bridge import Portal
from p2pdiag.webrtc.config import IceConfig, TurnServer, UpgradeTimeouts
from p2pdiag.webrtc.connection import ConnectionFacts, WebRTCConnection
from p2pdiag.webrtc.identify import IDENTIFY_PROTOCOL, identify_handler
from p2pdiag.webrtc.peer import RemoteDescriptionRejected, warm_up
from p2pdiag.webrtc.ping import PING_PROTOCOL, ping_handler
from p2pdiag.webrtc.sdp import parse_sdp
from p2pdiag.wire import pb

SIGNALING_PROTOCOL = signaling.PROTOCOL
_MESSAGE_TYPES = {
    signaling.MessageType.SDP_OFFER: SignalingMessageType.SDP_OFFER,
    signaling.MessageType.SDP_ANSWER: SignalingMessageType.SDP_ANSWER,
    signaling.MessageType.ICE_CANDIDATE: SignalingMessageType.ICE_CANDIDATE,
}
_NAMES = {signaling.MessageType.SDP_OFFER: "offer", signaling.MessageType.SDP_ANSWER: "answer",
          signaling.MessageType.ICE_CANDIDATE: "candidate"}
CLOSE_SIGNALING_TIMEOUT_S = 2.0
DTLS_STATE_GRACE_S = 0.5
# the remote reset the signaling stream while this side's checks were still out: how long ICE may
# still take to end on its own (a check's retransmits end within ~1.6 s), so that our own evidence,
# not the remote's giving up, names why (its ICE usually failed for the same reason, a moment sooner)
ICE_AFTER_RESET_GRACE_S = 2.0


class _Failed(Exception):
    def __init__(self, step: UpgradeStep, kind: ErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.step, self.kind, self.reason = step, kind, reason


class _Attempt:
    """One attempt's shared state: who we are, the recorder, the signaling stream."""

    def __init__(self, conn: WebRTCConnection, rec: Recorder, relayed_cid: str, timeouts: UpgradeTimeouts) -> None:
        self.conn = conn
        self.rec = rec
        self.cid = conn.connection_id
        self.relayed_cid = relayed_cid
        self.timeouts = timeouts
        self.stream: Any = None
        self.signaling_ended = False
        self.step = UpgradeStep.SIGNALING
        self.began = rec.now()

    def started(self, ice: IceConfig) -> None:
        rto, retransmits = ice_internals.set_stun_retransmits(self.timeouts.stun_rto, self.timeouts.stun_retransmits)
        t = self.timeouts
        self.rec.record(WebRTCUpgradeStarted, connection_id=self.cid, relayed_connection_id=self.relayed_cid,
                        role=self.conn.role, remote_peer_id=self.conn.remote_peer_id, stun_servers=ice.stun,
                        turn_servers=tuple(s.url for s in ice.turn), ice_policy=ice.ice_policy,
                        loopback_candidates=ice.loopback, stun_rto_s=rto, stun_retransmits=retransmits,
                        signaling_timeout_s=t.signaling, gathering_timeout_s=t.gathering, ice_timeout_s=t.ice,
                        dtls_timeout_s=t.dtls, channel_timeout_s=t.channel, host_addresses=ice.host_addresses,
                        stun_timeout_s=t.stun, turn_timeout_s=t.turn)

    def signaling_failed(self, stage: SignalingStage, message: signaling.MessageType | None, kind: ErrorKind,
                         error: str) -> None:
        self.rec.record(SignalingFailed, connection_id=self.cid, stage=stage,
                        message=_MESSAGE_TYPES.get(message) if message is not None else None,
                        error_kind=kind, error=error)

    def remote_ended(self, reset: bool, reason: str) -> None:
        if not self.signaling_ended:
            self.signaling_ended = True
            self.rec.record(SignalingStreamEnded, connection_id=self.cid, closer=Closer.REMOTE, reset=reset,
                            reason=reason)

    # --- signaling messages ---------------------------------------------------------------------

    async def write(self, message: signaling.Message, step: UpgradeStep) -> None:
        try:
            with trio.fail_after(self.timeouts.signaling):
                await self.stream.write(message.framed())
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, error = net.classify(exc)
            self.signaling_failed(SignalingStage.WRITE, message.type, kind, error)
            raise _Failed(step, kind, f"could not send the {_NAMES[message.type]}: {error}") from None

    async def read_expected(self, expected: signaling.MessageType, step: UpgradeStep) -> signaling.Message:
        name = _NAMES[expected]
        try:
            with trio.fail_after(self.timeouts.signaling):
                raw = await net.read_delimited(self.stream, signaling.MAX_MESSAGE_BYTES)
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, error = net.classify(exc)
            if kind is ErrorKind.TIMEOUT:
                error = f"no {name} within {self.timeouts.signaling:g} s"
            self.signaling_failed(SignalingStage.READ, expected, kind, error)
            if kind in (ErrorKind.RESET, ErrorKind.CLOSED):
                self.remote_ended(kind is ErrorKind.RESET, error)
                raise _Failed(step, kind, f"the remote {'reset' if kind is ErrorKind.RESET else 'closed'} the "
                              f"signaling stream instead of sending its {name}") from None
            raise _Failed(step, kind, error if kind is ErrorKind.TIMEOUT else f"no {name}: {error}") from None
        try:
            message = signaling.Message.decode(raw)
        except pb.MalformedMessage as exc:
            self.signaling_failed(SignalingStage.DECODE, expected, ErrorKind.MALFORMED, str(exc))
            raise _Failed(step, ErrorKind.MALFORMED, f"the {name} is not a valid signaling message: {exc}") from None
        if message.type is not expected:
            error = f"expected {expected.name}, got {message.type.name}"
            self.signaling_failed(SignalingStage.UNEXPECTED, expected, ErrorKind.MALFORMED, error)
            raise _Failed(step, ErrorKind.MALFORMED, f"the remote did not send its {name}: {error}")
        if not message.data:
            self.signaling_failed(SignalingStage.DECODE, expected, ErrorKind.MALFORMED, f"{expected.name} with no SDP")
            raise _Failed(step, ErrorKind.MALFORMED, f"the {name} carries no SDP")
        return message

    def describe(self, message: signaling.Message, *, sent: bool) -> None:
        sdp = message.data or ""
        facts = parse_sdp(sdp)
        setup = None
        if facts.setup in {s.value for s in DtlsSetup}:
            setup = DtlsSetup(facts.setup)
        self.rec.record(DescriptionSignaled, connection_id=self.cid, message=_MESSAGE_TYPES[message.type], sent=sent,
                        sdp_bytes=len(sdp.encode()), fingerprints=facts.fingerprints, setup=setup,
                        ice_ufrag=facts.ice_ufrag, ice_lite=facts.ice_lite, candidates=len(facts.candidates),
                        end_of_candidates=facts.end_of_candidates, data_channel=facts.data_channel)

    async def send_description(self, message: signaling.Message, step: UpgradeStep) -> None:
        await self.write(message, step)
        self.describe(message, sent=True)
        # Every candidate is in the SDP already (aiortc does not trickle): say so, the way js reads it.
        await self.write(signaling.end_of_candidates(), step)
        self.rec.record(EndOfCandidatesSent, connection_id=self.cid, candidates=self.conn.facts.local_candidates)

    async def apply(self, method: Callable[..., Any], message: signaling.Message, step: UpgradeStep) -> None:
        try:
            await self.conn.call(method, message.data)
        except net.NetworkFailure as exc:  # anything else is a bug in p2pdiag: it goes on up
            # refused by p2pdiag's checks or aiortc; or the asyncio side gave up on the call
            kind, error = (ErrorKind.MALFORMED, str(exc)) if isinstance(exc, RemoteDescriptionRejected) \
                else net.classify(exc)
            self.signaling_failed(SignalingStage.APPLY, message.type, kind, error)
            raise _Failed(step, kind, f"the remote's {_NAMES[message.type]} was not accepted: {error}") from None

    async def gather(self, method: Callable[..., Any]) -> Any:
        try:
            with trio.fail_after(self.timeouts.gathering):
                await self.conn.call(self.conn.session.bound_gathering, self.timeouts.stun, self.timeouts.turn)
                result = await self.conn.call(method)
        except trio.TooSlowError:
            raise _Failed(UpgradeStep.GATHERING, ErrorKind.TIMEOUT,
                          f"gathering local candidates took longer than {self.timeouts.gathering:g} s") from None
        except (OSError, net.NetworkFailure) as exc:  # no socket to gather on; anything else is a bug: on up
            kind, error = net.classify(exc)
            raise _Failed(UpgradeStep.GATHERING, kind, f"gathering failed: {error}") from None
        if self.conn.facts.local_candidates == 0:
            raise _Failed(UpgradeStep.GATHERING, ErrorKind.UNREACHABLE,
                          "no local ICE candidates: no usable network interface, and no STUN or TURN server "
                          "gave an address")
        return result

    # --- remote candidates, while connecting ----------------------------------------------------

    async def read_candidates(self) -> None:
        """Apply the remote's trickled candidates until the stream ends; never raises."""
        session = self.conn.session
        while True:
            try:
                raw = await net.read_delimited(self.stream, signaling.MAX_MESSAGE_BYTES)
            except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
                kind, error = net.classify(exc)
                if kind in (ErrorKind.RESET, ErrorKind.CLOSED):
                    self.remote_ended(kind is ErrorKind.RESET, error)
                    if kind is ErrorKind.RESET:
                        self.conn.facts.signaling_reset = True
                        self.conn.bump()
                else:
                    self.signaling_failed(SignalingStage.READ, signaling.MessageType.ICE_CANDIDATE, kind, error)
                return
            try:
                message = signaling.Message.decode(raw)
                if message.type is not signaling.MessageType.ICE_CANDIDATE:
                    self.signaling_failed(SignalingStage.UNEXPECTED, message.type, ErrorKind.MALFORMED,
                                          f"expected ICE_CANDIDATE, got {message.type.name}")
                    continue
                parsed = signaling.parse_candidate(message.data)
            except pb.MalformedMessage as exc:
                self.signaling_failed(SignalingStage.DECODE, signaling.MessageType.ICE_CANDIDATE,
                                      ErrorKind.MALFORMED, str(exc))
                continue
            try:
                if isinstance(parsed, signaling.EndOfCandidates):
                    await self.conn.call(session.end_of_candidates, parsed.data)
                else:
                    await self.conn.call(session.add_candidate, parsed)
            except net.NetworkFailure as exc:  # refused, or the asyncio side gave up on the call
                self.rec.record(RemoteCandidateRejected, connection_id=self.cid, source=CandidateSource.TRICKLE,
                                candidate=(message.data or "")[:300], reason=str(exc) or type(exc).__name__)

    async def connect(self, channel_ready: Callable[[ConnectionFacts], bool], channel_what: str) -> None:
        failure: _Failed | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.read_candidates)
            failure = await self._wait_connected(channel_ready, channel_what)
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _wait_connected(self, channel_ready: Callable[[ConnectionFacts], bool],
                              channel_what: str) -> _Failed | None:
        t = self.timeouts
        f = self.conn.facts

        def over(facts: ConnectionFacts) -> bool:
            return facts.signaling_reset or facts.pc in (PeerConnectionState.FAILED, PeerConnectionState.CLOSED)

        def gave_up(step: UpgradeStep) -> _Failed:
            if f.signaling_reset:
                return _Failed(step, ErrorKind.RESET,
                               "the remote reset the signaling stream: it gave up on the upgrade")
            return _Failed(step, ErrorKind.CLOSED, f"the peer connection became {f.pc.value}")

        ice_ended = (IceConnectionState.COMPLETED, IceConnectionState.FAILED, IceConnectionState.CLOSED)
        ice_deadline = trio.current_time() + t.ice
        with trio.move_on_after(t.ice):
            await self.conn.wait_until(lambda x: x.ice in ice_ended or over(x) or x.checks_refused is not None)
        if (f.signaling_reset and f.ice is IceConnectionState.CHECKING and f.checks_refused is None
                and f.pc not in (PeerConnectionState.FAILED, PeerConnectionState.CLOSED)):
            # SDP and candidates are exchanged: ICE goes on without the signaling stream
            with trio.move_on_after(min(ICE_AFTER_RESET_GRACE_S, max(0.0, ice_deadline - trio.current_time()))):
                await self.conn.wait_until(lambda x: x.ice in ice_ended or x.checks_refused is not None
                                           or x.pc in (PeerConnectionState.FAILED, PeerConnectionState.CLOSED))
        if f.ice is not IceConnectionState.COMPLETED:
            if f.checks_refused is not None:  # no check can leave this host: waiting out the budget changes nothing
                r = f.checks_refused
                return _Failed(UpgradeStep.ICE, ErrorKind.UNREACHABLE,
                               f"this host refused every check's UDP send ({r.errno_name}, {r.sends_refused} sends "
                               f"on {r.refused_pairs} pair(s)): none left the machine")
            if f.ice is IceConnectionState.FAILED:
                return _Failed(UpgradeStep.ICE, ErrorKind.UNREACHABLE, "every candidate pair failed")
            if over(f):
                return gave_up(UpgradeStep.ICE)
            return _Failed(UpgradeStep.ICE, ErrorKind.TIMEOUT,
                           f"no candidate pair succeeded within {t.ice:g} s")
        with trio.move_on_after(t.dtls):
            await self.conn.wait_until(lambda x: x.dtls in (DtlsState.CONNECTED, DtlsState.FAILED, DtlsState.CLOSED)
                                       or over(x))
        if f.dtls is not DtlsState.CONNECTED and f.pc is PeerConnectionState.FAILED:
            # aiortc reports the peer connection failed just before the DTLS transport that failed it
            with trio.move_on_after(DTLS_STATE_GRACE_S):
                await self.conn.wait_until(lambda x: x.dtls in (DtlsState.FAILED, DtlsState.CLOSED))
        if f.dtls is not DtlsState.CONNECTED:
            if f.dtls is DtlsState.FAILED:
                return _Failed(UpgradeStep.DTLS, ErrorKind.SECURITY_FAILED, f.dtls_error or "the DTLS handshake failed")
            if over(f) or f.dtls is DtlsState.CLOSED:
                return gave_up(UpgradeStep.DTLS)
            return _Failed(UpgradeStep.DTLS, ErrorKind.TIMEOUT,
                           f"the DTLS handshake did not finish within {t.dtls:g} s")
        with trio.move_on_after(t.channel):
            await self.conn.wait_until(lambda x: channel_ready(x) or over(x))
        if not channel_ready(f):
            if over(f):
                return gave_up(UpgradeStep.CHANNEL)
            return _Failed(UpgradeStep.CHANNEL, ErrorKind.TIMEOUT, f"{channel_what} within {t.channel:g} s")
        return None

    # --- the end --------------------------------------------------------------------------------

    async def report_pairs(self) -> None:
        if self.conn._session is not None:
            # best-effort detail for the trace: the outcome is already known
            with trio.CancelScope(shield=True), trio.move_on_after(2), contextlib.suppress(Exception):
                await self.conn._portal.run_sync(self.conn.session.report_pairs)

    async def succeed(self) -> WebRTCConnection:
        await self.report_pairs()
        # best-effort cleanup: the upgrade succeeded, the signaling stream has done its job
        with trio.move_on_after(CLOSE_SIGNALING_TIMEOUT_S), contextlib.suppress(Exception):
            await self.stream.close()
        if not self.signaling_ended:
            self.signaling_ended = True
            self.rec.record(SignalingStreamEnded, connection_id=self.cid, closer=Closer.LOCAL, reset=False,
                            reason="closed: the upgrade succeeded")
        self.rec.record(WebRTCUpgradeSucceeded, connection_id=self.cid, relayed_connection_id=self.relayed_cid,
                        role=self.conn.role, duration_s=self.rec.now() - self.began)
        self.conn.mark_established()
        return self.conn

    async def fail(self, step: UpgradeStep, kind: ErrorKind, reason: str) -> None:
        """Record the failure as of now, then tear down: what the teardown shows comes after it."""
        with trio.CancelScope(shield=True):
            await self.report_pairs()
            self.rec.record(WebRTCUpgradeFailed, connection_id=self.cid, relayed_connection_id=self.relayed_cid,
                            role=self.conn.role, step=step, error_kind=kind, reason=reason,
                            duration_s=self.rec.now() - self.began)
            if self.stream is not None:
                await net.reset_quietly(self.stream)
                if not self.signaling_ended:
                    self.signaling_ended = True
                    self.rec.record(SignalingStreamEnded, connection_id=self.cid, closer=Closer.LOCAL, reset=True,
                                    reason=f"reset: the upgrade failed at {step.value}")
            await self.conn.close()

    async def abandon(self) -> None:
        """Tear down after a bug in p2pdiag, recording nothing about the peer."""
        with trio.CancelScope(shield=True):
            if self.stream is not None:
                await net.reset_quietly(self.stream)
            with trio.move_on_after(2):
                await self.conn.close()


async def _run(attempt: _Attempt, body: Callable[[], Any]) -> WebRTCConnection | None:
    """Run an attempt's steps; whatever ends it early is recorded as a failure at the step reached."""
    try:
        return await body()
    except _Failed as failed:
        await attempt.fail(failed.step, failed.kind, failed.reason)
    except BaseException as exc:  # cancelled (the run's budget, Ctrl-C) or a bug: clean up, then let it go
        stopped = isinstance(exc, trio.Cancelled) or (
            isinstance(exc, BaseExceptionGroup) and exc.split(trio.Cancelled)[1] is None)
        if stopped:
            await attempt.fail(attempt.step, ErrorKind.OTHER, "the run was stopped during this step")
        else:  # a bug in p2pdiag: no failure is recorded against the peer or the network
            await attempt.abandon()
        raise
    return None


def prepare() -> None:
    """Get upgrades ready before there is a relayed connection to upgrade (call it in the trio run):
    importing this module imported aiortc and aioice; this starts the bridge's asyncio thread and
    there aiortc's first-time work (`peer.warm_up`), which runs beside whatever trio does next.
    Records nothing."""
    Portal().post(warm_up)


def _default_handlers(conn: WebRTCConnection, rec: Recorder, host: Any) -> None:
    conn.set_handler(PING_PROTOCOL, ping_handler(conn, rec))
    if host is not None:
        conn.set_handler(IDENTIFY_PROTOCOL, identify_handler(host))


async def upgrade_as_initiator(
    relayed_conn: Any,
    peer_id: str,
    connection_id: str,
    rec: Recorder,
    ice: IceConfig,
    timeouts: UpgradeTimeouts,
    *,
    relayed_connection_id: str = "",
    host: Any = None,
) -> WebRTCConnection | None:
    """Upgrade `relayed_conn` (a py-libp2p SwarmConn) to WebRTC as the dialer.

    Returns the connection (inbound streams are handled once its `serve()` runs), or None after
    recording why not. `host` lets the connection answer identify as well as ping.
    """
    conn = WebRTCConnection(connection_id, UpgradeRole.INITIATOR, peer_id, rec, Portal())
    _default_handlers(conn, rec, host)
    attempt = _Attempt(conn, rec, relayed_connection_id, timeouts)
    attempt.started(ice)

    async def steps() -> WebRTCConnection:
        began = rec.now()
        try:
            attempt.stream = await net.open_stream(relayed_conn, SIGNALING_PROTOCOL, timeouts.signaling)
        except Exception as exc:  # noqa: BLE001  (net.classify re-raises p2pdiag's bugs)
            kind, error = net.classify(exc)
            attempt.signaling_failed(SignalingStage.OPEN, None, kind, error)
            reason = (f"the peer answered 'na' to {SIGNALING_PROTOCOL}: it has no handler for it"
                      if kind is ErrorKind.PROTOCOL_UNSUPPORTED else f"could not open {SIGNALING_PROTOCOL}: {error}")
            raise _Failed(UpgradeStep.SIGNALING, kind, reason) from None
        rec.record(SignalingStreamOpened, connection_id=connection_id, relayed_connection_id=relayed_connection_id,
                   inbound=False, duration_s=rec.now() - began)
        attempt.step = UpgradeStep.GATHERING
        await conn.start(ice)
        init_key, offer_sdp = await attempt.gather(conn.session.make_offer)
        init = conn.track_init(init_key)
        attempt.step = UpgradeStep.OFFER
        await attempt.send_description(signaling.offer(offer_sdp), UpgradeStep.OFFER)
        attempt.step = UpgradeStep.ANSWER
        answer = await attempt.read_expected(signaling.MessageType.SDP_ANSWER, UpgradeStep.ANSWER)
        attempt.describe(answer, sent=False)
        await attempt.apply(conn.session.accept_answer, answer, UpgradeStep.ANSWER)
        attempt.step = UpgradeStep.ICE
        await attempt.connect(lambda f: f.init_open, "the \"init\" data channel did not open")
        # Close "init" and wait until it is gone, as js does, so its id is not reused too early.
        conn._close_channel(init_key)
        with trio.move_on_after(timeouts.channel):
            while not init._gone():
                await init._wait()
        return await attempt.succeed()

    return await _run(attempt, steps)


async def handle_signaling_stream(
    stream: Any,
    relayed_connection_id: str,
    rec: Recorder,
    ice: IceConfig,
    timeouts: UpgradeTimeouts,
    *,
    connection_id: str | None = None,
    remote_peer_id: str | None = None,
    host: Any = None,
) -> WebRTCConnection | None:
    """Answer an upgrade on an inbound /webrtc-signaling/0.0.1 stream (the stream handler's body).

    Returns the connection once the peer connection is up and the dialer's first data channel
    arrived; run its `serve()` to answer the dialer's streams (ping, and identify with `host`).
    """
    if remote_peer_id is None:
        remote_peer_id = str(getattr(getattr(stream, "muxed_conn", None), "peer_id", "") or "")
    cid = connection_id or f"webrtc-{relayed_connection_id}"
    conn = WebRTCConnection(cid, UpgradeRole.RESPONDER, remote_peer_id, rec, Portal())
    _default_handlers(conn, rec, host)
    attempt = _Attempt(conn, rec, relayed_connection_id, timeouts)
    attempt.stream = stream
    attempt.started(ice)
    rec.record(SignalingStreamOpened, connection_id=cid, relayed_connection_id=relayed_connection_id, inbound=True,
               duration_s=0.0)
    attempt.step = UpgradeStep.OFFER

    async def steps() -> WebRTCConnection:
        offer = await attempt.read_expected(signaling.MessageType.SDP_OFFER, UpgradeStep.OFFER)
        attempt.describe(offer, sent=False)
        await conn.start(ice)
        await attempt.apply(conn.session.accept_offer, offer, UpgradeStep.OFFER)
        attempt.step = UpgradeStep.GATHERING
        answer_sdp = await attempt.gather(conn.session.make_answer)
        attempt.step = UpgradeStep.ANSWER
        await attempt.send_description(signaling.answer(answer_sdp), UpgradeStep.ANSWER)
        attempt.step = UpgradeStep.ICE
        await attempt.connect(lambda f: f.inbound_channels > 0, "no data channel came from the dialer")
        return await attempt.succeed()

    return await _run(attempt, steps)


__all__ = [
    "SIGNALING_PROTOCOL",
    "IceConfig",
    "TurnServer",
    "UpgradeTimeouts",
    "WebRTCConnection",
    "handle_signaling_stream",
    "upgrade_as_initiator",
]
