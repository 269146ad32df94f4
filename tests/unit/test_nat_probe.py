"""`p2pdiag nat`: the STUN codec, and the mapping and filtering judged from the tests' results.

The probe itself runs against the lab's coturn in tests/lab/test_nat_lab.py (root).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys

import pytest

from p2pdiag.diagnosis.nat import ADM, APDM, DEPENDENT, EIM, NO_UDP, UNTESTED, nat_behaviour
from p2pdiag.wire.stun import (
    BINDING_SUCCESS,
    CHANGE_REQUEST,
    MAGIC_COOKIE,
    OTHER_ADDRESS,
    RESPONSE_ORIGIN,
    XOR_MAPPED_ADDRESS,
    NatTest,
    StunDecodeError,
    binding_request,
    parse_response,
    parse_stun_url,
)

TID = bytes(range(12))
PRIMARY, OTHER = ("203.0.113.3", 3478), ("203.0.113.4", 3479)
LOCAL = ("0.0.0.0", 40000)


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _addr(ip: str, port: int, xor: bool = False) -> bytes:
    raw = socket.inet_aton(ip)
    if xor:
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(b ^ k for b, k in zip(raw, struct.pack("!I", MAGIC_COOKIE), strict=True))
    return struct.pack("!BBH", 0, 1, port) + raw


def _response(mapped, origin=None, other=None, tid=TID) -> bytes:
    attrs = _attr(XOR_MAPPED_ADDRESS, _addr(*mapped, xor=True))
    if origin:
        attrs += _attr(RESPONSE_ORIGIN, _addr(*origin))
    if other:
        attrs += _attr(OTHER_ADDRESS, _addr(*other))
    return struct.pack("!HHI", BINDING_SUCCESS, len(attrs), MAGIC_COOKIE) + tid + attrs


def test_binding_request_with_change_request():
    msg = binding_request(TID, 0x06)
    assert struct.unpack("!HHI", msg[:8]) == (0x0001, 8, MAGIC_COOKIE) and msg[8:20] == TID
    assert struct.unpack("!HHI", msg[20:]) == (CHANGE_REQUEST, 4, 6)
    assert len(binding_request(TID)) == 20


def test_response_addresses_are_read_and_unxored():
    got = parse_response(_response(("198.51.100.7", 50123), PRIMARY, OTHER), TID)
    assert got == {"mapped": ("198.51.100.7", 50123), "origin": PRIMARY, "other": OTHER}


@pytest.mark.parametrize("data", [b"", _response(("1.2.3.4", 1), tid=os.urandom(12)),
                                  _response(("1.2.3.4", 1))[:20] + b"\0" * 4])
def test_bad_or_foreign_responses_are_refused(data):
    with pytest.raises(StunDecodeError):
        parse_response(data, TID)


def test_stun_urls():
    assert parse_stun_url("stun:203.0.113.3:3478") == ("203.0.113.3", 3478)
    assert parse_stun_url("stun:stun.example.org") == ("stun.example.org", 3478)
    assert parse_stun_url("stun:[2001:db8::1]:3479") == ("2001:db8::1", 3479)
    for bad in ("turn:x:1", "stun:", "stun:host:port", "stun:host:70000"):
        with pytest.raises(ValueError):
            parse_stun_url(bad)


# --- judged: the results coturn gave in the lab (tests/lab/test_nat_lab.py runs them for real) ---


def _t(name, server, mapped, change=0, other=OTHER, origin=None) -> NatTest:
    return NatTest(name, server, change, LOCAL, mapped is not None, mapped, origin, other if mapped else None,
                   0.001 if mapped else None)


PUB = "203.0.113.1"
CASES = {
    "full cone": ([_t("mapping-1", PRIMARY, (PUB, 40000)), _t("mapping-2", ("203.0.113.4", 3478), (PUB, 40000)),
                   _t("filtering-1", PRIMARY, (PUB, 40001)),
                   _t("filtering-2", PRIMARY, (PUB, 40001), 6, origin=OTHER)],
                  EIM, "endpoint-independent"),
    "port-restricted cone": ([_t("mapping-1", PRIMARY, (PUB, 40000)),
                              _t("mapping-2", ("203.0.113.4", 3478), (PUB, 40000)),
                              _t("filtering-1", PRIMARY, (PUB, 40001)), _t("filtering-2", PRIMARY, None, 6),
                              _t("filtering-3", PRIMARY, None, 2)],
                             EIM, "address-and-port-dependent"),
    "address-restricted cone": ([_t("mapping-1", PRIMARY, (PUB, 40000)),
                                 _t("mapping-2", ("203.0.113.4", 3478), (PUB, 40000)),
                                 _t("filtering-1", PRIMARY, (PUB, 40001)), _t("filtering-2", PRIMARY, None, 6),
                                 _t("filtering-3", PRIMARY, (PUB, 40001), 2)],
                                EIM, "address-dependent"),
    "symmetric": ([_t("mapping-1", PRIMARY, (PUB, 51000)), _t("mapping-2", ("203.0.113.4", 3478), (PUB, 52000)),
                   _t("mapping-3", OTHER, (PUB, 53000)), _t("filtering-1", PRIMARY, (PUB, 54000)),
                   _t("filtering-2", PRIMARY, None, 6), _t("filtering-3", PRIMARY, None, 2)],
                  APDM, "address-and-port-dependent"),
    "address-dependent mapping": ([_t("mapping-1", PRIMARY, (PUB, 51000)),
                                   _t("mapping-2", ("203.0.113.4", 3478), (PUB, 52000)),
                                   _t("mapping-3", OTHER, (PUB, 52000))],
                                  ADM, UNTESTED),
    "udp blocked": ([_t("mapping-1", PRIMARY, None)], NO_UDP, NO_UDP),
    "two plain servers, different ports": ([_t("mapping-1", PRIMARY, (PUB, 51000), other=None),
                                            _t("mapping-2", ("198.51.100.9", 3478), (PUB, 52000), other=None)],
                                           DEPENDENT, UNTESTED),
    "one plain server": ([_t("mapping-1", PRIMARY, (PUB, 51000), other=None)], UNTESTED, UNTESTED),
}


@pytest.mark.parametrize("case", list(CASES))
def test_nat_behaviour(case):
    tests, mapping, filtering = CASES[case]
    got = nat_behaviour(tests)
    assert (got.mapping, got.filtering) == (mapping, filtering)
    assert got.evidence
    assert (got.settle is None) is (UNTESTED not in (mapping, filtering) and mapping not in (DEPENDENT, NO_UDP))


def test_the_command_needs_a_stun_server():
    out = subprocess.run([sys.executable, "-m", "p2pdiag", "nat"], capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "--stun" in out.stderr
    out = subprocess.run([sys.executable, "-m", "p2pdiag", "nat", "--stun", "turn:x"], capture_output=True, check=False,
                         text=True)
    assert out.returncode == 2 and "stun:" in out.stderr
