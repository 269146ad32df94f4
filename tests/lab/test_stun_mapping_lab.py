"""The remote's NAT mapping read from its srflx candidates, with real NATs in the lab.

With two STUN servers (the lab's coturn on its two addresses) each p2pdiag peer asks both from
the same socket and sends a srflx candidate per server. A cone NAT gives that one base one public
port for both; a symmetric NAT gives two. The dialer reads the listener's mapping from them, so
direct-impossible-symmetric-nat fires, certain, only when both sides were seen symmetric. Needs
root and `ip netns`; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from record.network import run_case

from p2pdiag.diagnosis.network import EIM_SEEN, SYMMETRIC, mapping_from_srflx
from p2pdiag.lab import Lab, Router, Topology
from p2pdiag.trace.file import load

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="the lab needs root and ip netns")


@pytest.fixture(scope="module")
def lab():
    Lab.cleanup_leftovers()
    with Lab(Topology(a=Router(nat="cone"), b=Router(nat="cone"))) as lab:
        yield lab


def _run(lab: Lab, nat: str, tmp_path: Path, name: str, extra: tuple[str, ...]):
    lab.set_router("a", Router(nat=nat))
    lab.set_router("b", Router(nat=nat))
    dial_trace, _, dial = run_case(lab, name, tmp_path, False, "all", extra=("--stun-timeout", "0.5", *extra))
    trace = load(dial_trace)
    remote_srflx = [e for e in trace.events if e.kind == "webrtc.candidate_received"
                    and e.candidate_type.value == "srflx" and e.accepted]
    return json.loads(dial.stdout), remote_srflx


def _finding(doc: dict, code: str) -> dict | None:
    return next((f for f in doc["findings"] if f["code"] == code), None)


def test_cone_nats_map_one_base_to_one_port_for_both_servers(lab, tmp_path):
    doc, srflx = _run(lab, "cone", tmp_path, "two-stun-cone", ())  # "two-stun-": both peers get both
    assert doc["outcome"] == "upgraded"
    assert len(srflx) == 2 and len({c.foundation for c in srflx}) == 2  # one per STUN server
    assert len({(c.related_address, c.related_port) for c in srflx}) == 1  # one base
    assert len({(c.address, c.port) for c in srflx}) == 1  # one public mapping
    assert mapping_from_srflx(srflx).verdict == EIM_SEEN
    assert _finding(doc, "direct-impossible-symmetric-nat") is None
    assert _finding(doc, "nat-mapping-symmetric") is None


def test_symmetric_nats_seen_on_both_sides_make_direct_impossible_certain(lab, tmp_path):
    doc, srflx = _run(lab, "symmetric", tmp_path, "two-stun-symmetric", ())
    assert doc["outcome"] == "relayed_only"
    assert len({(c.related_address, c.related_port) for c in srflx}) == 1
    assert len({c.port for c in srflx}) == 2  # the same base, a new port per server
    assert mapping_from_srflx(srflx).verdict == SYMMETRIC
    finding = _finding(doc, "direct-impossible-symmetric-nat")
    assert finding is not None
    assert finding["confidence"] == "certain" and finding["settle"] is None
    assert (finding["data"]["local_mapping"], finding["data"]["remote_mapping"]) == (SYMMETRIC, SYMMETRIC)
    assert finding["data"]["relay_cut_after_s"] == 3600  # py-libp2p's relay announces 3600 s


def test_one_stun_server_on_the_listener_leaves_its_mapping_a_hint(lab, tmp_path):
    # only the dialer gets the second server ("probed-"): it knows its own NAT, not the listener's
    doc, srflx = _run(lab, "symmetric", tmp_path, "probed-one-stun-listener", ())
    assert doc["outcome"] == "relayed_only"
    assert len(srflx) == 1
    finding = _finding(doc, "direct-impossible-symmetric-nat")
    assert finding is not None
    assert finding["confidence"] == "likely"
    assert finding["data"]["remote_mapping"] != SYMMETRIC
    assert finding["settle"]  # says what would measure the listener's mapping
