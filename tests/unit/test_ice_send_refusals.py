"""When `ice.SendLedger` concludes that this host refused every check (and when it must not).

The ledger is fed the outcome of each send as asyncio's transport reports it (tests/interop's
test_webrtc_live.py gets real EPERMs from a firewall in a namespace of its own; the pin below gets
a real send error on loopback). Here the pairs are aioice's own, on real StunProtocols, and the
outcomes are given: the rules about which mixes settle it, which is what must never name a wrong
cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno

from aioice import Candidate, Connection
from aioice.ice import CandidatePair, StunProtocol

from p2pdiag.webrtc import ice

EPERM = OSError(errno.EPERM, "Operation not permitted")
UNREACH = OSError(errno.ENETUNREACH, "Network is unreachable")


def _candidate(host: str, port: int) -> Candidate:
    return Candidate(foundation=f"f{port}", component=1, transport="udp", priority=1, host=host, port=port,
                     type="host")


def _ledger(remotes: list[tuple[str, int]], sends: list[tuple[int, OSError | None]], paired: int | None = None):
    """A ledger over one local socket paired with each of REMOTES (the first PAIRED only, if given);
    SENDS: (remote index, outcome)."""
    failures: list[ice.SendFailure] = []
    refused: list[ice.ChecksRefused] = []

    async def main() -> ice.SendLedger:
        conn = Connection(ice_controlling=True, use_ipv6=False)
        protocol = StunProtocol(conn)
        protocol.local_candidate = _candidate("192.0.2.10", 5000)
        for host, port in remotes[:paired]:
            remote = _candidate(host, port)
            remote._network_host = host
            conn._check_list.append(CandidatePair(protocol, remote))
        ledger = ice.SendLedger(conn, failures.append, refused.append)
        for index, outcome in sends:
            ledger.sent(("192.0.2.10", 5000), remotes[index], outcome)
        return ledger

    return asyncio.run(main()), failures, refused


def test_every_pair_refused_twice_settles_it_once():
    ledger, failures, refused = _ledger([("198.51.100.1", 1), ("198.51.100.2", 2)],
                                        [(0, EPERM), (1, EPERM), (0, EPERM), (1, EPERM), (1, EPERM)])
    (r,) = refused
    assert (r.pairs, r.refused_pairs, r.unroutable_pairs, r.errno_name) == (2, 2, 0, "EPERM")
    assert r.sends_refused == 4  # settled at the fourth; the fifth came after
    assert ledger.concluded is r
    # one failure reported per socket, address and errno, not one per send
    assert [(f.remote, f.errno_name, f.refused) for f in failures] == [
        (("198.51.100.1", 1), "EPERM", True), (("198.51.100.2", 2), "EPERM", True)]


def test_one_refusal_is_not_enough():
    """A rate limit refuses one packet and lets the next go: the first and its retransmit must both fail."""
    _, _, refused = _ledger([("198.51.100.1", 1)], [(0, EPERM)])
    assert refused == []


def test_a_send_that_went_out_means_nothing_is_settled():
    """Once one send left, the peer may yet answer: a slow remote, a NAT, a firewall elsewhere."""
    _, _, refused = _ledger([("198.51.100.1", 1)], [(0, None), (0, EPERM), (0, EPERM), (0, EPERM)])
    assert refused == []
    _, _, refused = _ledger([("198.51.100.1", 1), ("198.51.100.2", 2)],
                            [(0, EPERM), (0, EPERM), (1, None), (1, EPERM), (1, EPERM)])
    assert refused == []


def test_a_pair_not_tried_yet_keeps_it_open():
    _, _, refused = _ledger([("198.51.100.1", 1), ("198.51.100.2", 2)], [(0, EPERM), (0, EPERM)])
    assert refused == []


def test_no_route_alone_is_not_a_firewall():
    _, failures, refused = _ledger([("198.51.100.1", 1)], [(0, UNREACH), (0, UNREACH)])
    assert refused == [] and [(f.errno_name, f.refused) for f in failures] == [("ENETUNREACH", False)]


def test_unroutable_pairs_beside_refused_ones_settle_it():
    """A loopback socket cannot reach a public address (ENETUNREACH); the others were refused."""
    _, _, refused = _ledger([("198.51.100.1", 1), ("198.51.100.2", 2)],
                            [(0, EPERM), (1, UNREACH), (0, EPERM)])
    (r,) = refused
    assert (r.pairs, r.refused_pairs, r.unroutable_pairs) == (2, 1, 1)


def test_a_succeeded_pair_settles_nothing():
    def run() -> list:
        refused: list = []

        async def main() -> None:
            conn = Connection(ice_controlling=True, use_ipv6=False)
            protocol = StunProtocol(conn)
            protocol.local_candidate = _candidate("192.0.2.10", 5000)
            remote = _candidate("198.51.100.1", 1)
            remote._network_host = remote.host
            pair = CandidatePair(protocol, remote)
            pair.state = CandidatePair.State.SUCCEEDED
            conn._check_list.append(pair)
            ledger = ice.SendLedger(conn, lambda f: None, refused.append)
            ledger.sent(("192.0.2.10", 5000), ("198.51.100.1", 1), EPERM)
            ledger.sent(("192.0.2.10", 5000), ("198.51.100.1", 1), EPERM)

        asyncio.run(main())
        return refused

    assert run() == []


def test_what_it_tallies_is_bounded_and_an_untallied_pair_settles_nothing(monkeypatch):
    """Responses to checks sprayed from many ports (no pair of ours) fill the tally; the one pair
    refused after that is not tallied, so nothing is concluded from it."""
    monkeypatch.setattr(ice, "MAX_TALLIED", 3)
    remotes = [("198.51.100.1", 1)] + [(f"203.0.113.{i}", i) for i in range(1, 6)]
    ledger, failures, refused = _ledger(remotes, [(i, EPERM) for i in range(1, 6)] + [(0, EPERM), (0, EPERM)],
                                        paired=1)
    assert len(ledger._tallies) == 3 and len(failures) == 3
    assert refused == []


def test_watch_sends_sees_a_send_the_os_failed_at_once():
    """Pins the mechanism on loopback: asyncio's transport hands a failed sendto() to the protocol's
    error_received inside the call, and the check's first send goes through the wrapper."""
    failures: list[ice.SendFailure] = []
    saved = ice.set_stun_retransmits(0.05, 1)

    async def main() -> None:
        conn = Connection(ice_controlling=True, use_ipv6=False)
        ice.add_loopback_on_gather(conn, lambda c: None)
        ice.restrict_host_addresses(conn, ())
        ice.watch_sends(conn, failures.append, lambda r: None)
        await conn.gather_candidates()
        # from 127.0.0.1 to an address only another interface could reach: the OS fails the send at once
        await conn.add_remote_candidate(_candidate("198.51.100.7", 9))
        await conn.add_remote_candidate(None)
        conn.remote_username, conn.remote_password = "abcd", "a" * 22
        with contextlib.suppress(ConnectionError):  # it fails: the one pair cannot be checked
            await asyncio.wait_for(conn.connect(), 5)
        await conn.close()

    try:
        asyncio.run(main())
    finally:
        ice.set_stun_retransmits(*saved)
    assert failures, "no send failure seen"
    f = failures[0]
    assert f.local[0] == "127.0.0.1" and f.remote == ("198.51.100.7", 9)
    assert f.errno_name in {errno.errorcode[errno.ENETUNREACH], errno.errorcode[errno.EINVAL]} and not f.refused
