"""net.classify: network and peer failures by the exceptions' types; everything else is a bug and raised again."""

from __future__ import annotations

import errno
import itertools

import pytest
import trio
from libp2p.network.exceptions import SwarmException
from libp2p.network.stream.exceptions import StreamReset
from libp2p.protocol_muxer.exceptions import (
    MultiselectClientError,
    MultiselectCommunicatorError,
    ProtocolNotSupportedError,
)
from libp2p.security.noise.exceptions import PeerIDMismatchesPubkey
from libp2p.transport.exceptions import SecurityUpgradeFailure

from p2pdiag.diagnosis.findings.relaycheck import transfer_failed
from p2pdiag.diagnosis.model import Severity
from p2pdiag.probes import net
from p2pdiag.trace.events import ErrorKind
from p2pdiag.trace.events.relaycheck import TransferFailed
from p2pdiag.wire import pb


def chained(*excs: BaseException) -> BaseException:
    """excs[0] raised from excs[1] raised from ... (the way py-libp2p wraps)."""
    for outer, inner in itertools.pairwise(excs):
        outer.__cause__ = inner
    return excs[0]


@pytest.mark.parametrize("bug", [TypeError("x"), AttributeError("y"), NameError("z"), KeyError("k"),
                                 AssertionError(), ImportError("m"), IndexError("i"),
                                 ValueError("multiselect protocol ID mismatch, connection refused, reset")])
def test_a_programming_error_is_raised_again_whatever_its_words(bug):
    with pytest.raises(type(bug)):
        net.classify(bug)


def test_a_library_exception_raised_from_a_programming_error_is_the_programming_error():
    exc = chained(SwarmException("failed to upgrade security"), TypeError("p2pdiag's callback broke"))
    with pytest.raises(SwarmException):
        net.classify(exc)
    assert not net.is_network_failure(exc)


def test_an_exception_group_is_a_network_failure_only_when_every_member_is():
    assert net.is_network_failure(BaseExceptionGroup("g", [StreamReset("r"), EOFError("e")]))
    assert not net.is_network_failure(BaseExceptionGroup("g", [StreamReset("r"), TypeError("t")]))


def test_multistream_2_is_a_negotiation_failure_not_a_changed_key():
    # the words "mismatch" made this relay-wrong-peer-id ("the relay's key changed") before
    exc = chained(SwarmException("failed to upgrade security"), SecurityUpgradeFailure("failed to negotiate"),
                  MultiselectClientError("multiselect protocol ID mismatch: expected /multistream/1.0.0, "
                                         "got '/multistream/2.0.0'"))
    kind, message = net.classify(exc)
    assert kind is ErrorKind.NEGOTIATION_FAILED
    assert "/multistream/2.0.0" in message


def test_a_reset_during_negotiation_is_a_reset_and_na_is_protocol_unsupported():
    reset = chained(MultiselectClientError("protocol read failed"), MultiselectCommunicatorError("read failed"),
                    StreamReset("stream reset"))
    assert net.classify(reset)[0] is ErrorKind.RESET
    assert net.classify(ProtocolNotSupportedError("protocol not supported"))[0] is ErrorKind.PROTOCOL_UNSUPPORTED
    # a peer-id mismatch is told by its class, not by a word in a message
    assert net.classify(chained(SwarmException("x"), PeerIDMismatchesPubkey("y")))[0] is ErrorKind.PEER_ID_MISMATCH


@pytest.mark.parametrize(("exc", "kind"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), ErrorKind.REFUSED),
    (OSError(errno.EHOSTUNREACH, "No route to host"), ErrorKind.UNREACHABLE),
    (ConnectionResetError(errno.ECONNRESET, "reset"), ErrorKind.RESET),
    (EOFError("stream ended after 3 of 9 bytes"), ErrorKind.CLOSED),
    (trio.TooSlowError(), ErrorKind.TIMEOUT),
    (pb.MalformedMessage("bad varint"), ErrorKind.MALFORMED),
    (net.WebSocketUpgradeFailed("HTTP 200"), ErrorKind.WEBSOCKET_UPGRADE_FAILED),
])
def test_kinds_by_type(exc, kind):
    assert net.classify(exc)[0] is kind


def _transfer(**fields) -> TransferFailed:
    base = {"t_s": 1.0, "relay": "/ip4/127.0.0.1/tcp/1/p2p/R", "connection_id": "r1.loop",
            "payload_bytes": 32768, "error_kind": ErrorKind.MALFORMED, "error": "e", "duration_s": 0.1}
    return TransferFailed(**{**base, **fields})


def test_a_short_transfer_stays_a_warning_and_only_a_full_changed_one_is_an_error():
    short = transfer_failed("R", _transfer(counted_bytes=1000, digest_matched=False))
    wrong_tag = transfer_failed("R", _transfer(counted_bytes=None, digest_matched=False))
    changed = transfer_failed("R", _transfer(counted_bytes=32768, digest_matched=False))
    assert short.severity is Severity.WARNING and not short.data.get("corrupted")
    assert wrong_tag.severity is Severity.WARNING
    assert changed.severity is Severity.ERROR and changed.data["corrupted"]
    # a trace from before the count and digest were recorded keeps its verdict
    assert transfer_failed("R", _transfer()).severity is Severity.ERROR
    assert transfer_failed("R", _transfer(error_kind=ErrorKind.TIMEOUT)).severity is Severity.WARNING


def test_a_refusal_by_p2pdiags_own_host_is_never_the_peers_fault():
    """py-libp2p's resource manager refusing a connection (the local host's limits: seen as the ninth
    connection to one relay in watch) is raised on as p2pdiag's problem, not classified as the peer's."""
    from libp2p.network.exceptions import SwarmException
    from libp2p.rcmgr.exceptions import ResourceLimitExceeded

    try:
        try:
            raise ResourceLimitExceeded(message="Established per peer limit exceeded: 8 >= 8")
        except ResourceLimitExceeded as inner:
            raise SwarmException(f"Connection denied by connection limits: {inner}") from None
    except SwarmException as exc:
        refused = exc
    assert not net.is_network_failure(refused)
    with pytest.raises(SwarmException):
        net.classify(refused)
    assert net.is_network_failure(SwarmException("unable to connect to the peer"))  # the library's own failures stay
    # the WebSocket transport's own count of its connections refusing a dial is p2pdiag's problem too
    from libp2p.transport.exceptions import OpenConnectionError

    assert not net.is_network_failure(OpenConnectionError("Maximum connections reached"))
    assert net.is_network_failure(OpenConnectionError("Failed to dial: Connection refused"))


@pytest.mark.parametrize("name", ["StreamEOF", "StreamReset", "StreamClosed", "ProtocolNotSupportedError",
                                  "MultiselectClientError", "SecurityUpgradeFailure", "MuxerUpgradeFailure"])
def test_p2pdiags_own_link_exceptions_are_named_as_py_libp2ps_of_the_same_name(name):
    """probes/yamux.py, probes/noise.py and p2pdiag's own dials raise net's classes (no py-libp2p import);
    each gives the kind py-libp2p's class of that name gives, alone and under another failure."""
    from libp2p.network.stream import exceptions as stream
    from libp2p.protocol_muxer import exceptions as multiselect
    from libp2p.transport import exceptions as transport

    theirs = next(getattr(m, name) for m in (stream, multiselect, transport) if hasattr(m, name))
    own = net.library_error(name, "x")
    assert type(own).__module__ == "p2pdiag.probes.net" and type(own).__name__ == name
    assert net.classify(own)[0] is net.classify(theirs("x"))[0]
    outer = chained(net.SecurityUpgradeFailure("y"), own)
    assert net.classify(outer)[0] is net.classify(chained(SecurityUpgradeFailure("y"), theirs("x")))[0]


def test_own_noise_failures_keep_py_libp2ps_kinds():
    assert net.classify(chained(net.SecurityUpgradeFailure("s"), net.PeerIDMismatchesPubkey("p")))[0] \
        is ErrorKind.PEER_ID_MISMATCH
    assert net.classify(net.HandshakeFailure("did not decrypt"))[0] is ErrorKind.SECURITY_FAILED
    assert net.classify(chained(net.HandshakeFailure("h"), ConnectionResetError(104, "reset")))[0] is ErrorKind.RESET
