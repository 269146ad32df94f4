"""`p2pdiag analyze` of chrome://webrtc-internals dumps recorded from real Chromium
(tests/record/webrtc_internals.py re-records them): codes and facts per dump, never text."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from support.verdicts import assert_codes

from p2pdiag.diagnosis.model import Confidence, Outcome
from p2pdiag.diagnosis.webrtc_internals import diagnose_dump
from p2pdiag.errors import TraceFileError
from p2pdiag.evidence import webrtc_internals as wi
from p2pdiag.evidence.detect import Format, detect

ROOT = Path(__file__).resolve().parents[2]
DUMPS = ROOT / "tests" / "traces" / "webrtc-internals"

# dump, outcome, codes that must be there, codes that must not, the mattered peer connection's result,
# and facts of it (a subset)
TABLE = [
    ("upgraded", Outcome.UPGRADED, set(),
     {"webrtc-ice-failed", "webrtc-dtls-failed", "turn-allocation-failed", "udp-blocked-local"},
     "upgraded", {"initiator": False, "candidate_errors": [], "ice_servers": []}),
    ("two-upgrades", Outcome.UPGRADED, set(),
     {"webrtc-ice-failed", "webrtc-dtls-failed", "turn-allocation-failed", "udp-blocked-local"},
     "upgraded", {"initiator": False}),
    ("upgraded-stun", Outcome.UPGRADED, set(),
     {"webrtc-ice-failed", "turn-allocation-failed", "udp-blocked-local", "nat-mapping-symmetric"},
     "upgraded", {"initiator": False, "candidate_errors": []}),
    ("turn-refused-relay-only", Outcome.RELAYED_ONLY, {"turn-allocation-failed", "webrtc-no-local-candidates"},
     {"webrtc-dtls-failed", "udp-blocked-local"},
     "no-local-candidates", {"ice_transport_policy": "relay", "local_candidates": []}),
    ("no-local-candidates", Outcome.RELAYED_ONLY, {"webrtc-no-local-candidates"},
     {"turn-allocation-failed", "webrtc-dtls-failed"},
     "no-local-candidates", {"local_candidates": [], "initiator": False, "ice_servers": []}),
    # UDP dropped by nftables: the js dialer gave up at 6 s while Chromium's ICE was still checking
    ("udp-blocked", Outcome.RELAYED_ONLY, {"webrtc-ice-failed", "udp-blocked-local"},
     {"webrtc-no-local-candidates", "webrtc-no-remote-candidates", "turn-allocation-failed"},
     "unfinished", {"ice_states": ["checking"], "selected": None}),
]


@pytest.mark.parametrize(("name", "outcome", "present", "absent", "result", "facts"), TABLE, ids=[r[0] for r in TABLE])
def test_recorded_dump_gives_its_verdict(name, outcome, present, absent, result, facts):
    path = DUMPS / f"{name}.json.gz"
    assert detect(path) is Format.WEBRTC_INTERNALS
    verdict = diagnose_dump(wi.load(path))
    assert_codes(verdict, outcome, present, absent)
    read = verdict.facts["dump"]
    assert read["compressed"] and read["browser"].startswith("Chromium ")
    assert read["peer_connections"] == len(verdict.facts["peer_connections"]) >= 1
    assert read["span_s"] is not None and read["first_time"].endswith("Z")
    assert any("other side" in lack for lack in read["lacks"])
    [mattered] = [pc for pc in verdict.facts["peer_connections"] if pc["key"] == verdict.facts["mattered"]]
    assert mattered["result"] == result
    assert facts.items() <= mattered.items()
    assert verdict.steps[0].key == "dump.read"


def test_an_upgrade_names_its_selected_pair_and_checks():
    verdict = diagnose_dump(wi.load(DUMPS / "upgraded.json.gz"))
    [pc] = verdict.facts["peer_connections"]
    assert pc["ice_states"][-1] == "connected" and pc["connection_states"][-1] == "connected"
    selected = pc["selected"]
    assert selected["relayed_by_turn"] is False
    assert selected["remote_type"] == "host" and selected["local_type"] in ("host", "prflx")
    [pair] = [p for p in pc["pairs"] if p["selected"]]
    assert pair["nominated"] and pair["responses_received"] >= 1 and "succeeded" in pair["states"]
    assert pc["stats_samples"] >= 2
    assert {c["type"] for c in pc["remote_candidates"]} == {"host"}


def test_of_several_peer_connections_the_last_that_connected_mattered():
    """Two dials one after the other: each is judged; the verdict is about the later one."""
    verdict = diagnose_dump(wi.load(DUMPS / "two-upgrades.json.gz"))
    first, second = verdict.facts["peer_connections"]
    assert verdict.facts["mattered"] == second["key"] != first["key"]
    assert first["result"] == second["result"] == "upgraded"
    assert first["connection_states"][-1] == "disconnected"  # its dialer had left
    assert [s.key for s in verdict.steps] == ["dump.read", f"pc.{first['key']}", f"pc.{second['key']}"]


def test_a_turn_refusal_keeps_its_code_and_no_credential():
    path = DUMPS / "turn-refused-relay-only.json.gz"
    verdict = diagnose_dump(wi.load(path))
    [turn] = [f for f in verdict.findings if f.code == "turn-allocation-failed"]
    assert turn.data["error_code"] == 401 and turn.confidence is Confidence.CERTAIN
    assert str(turn.data["server"]).startswith("turn:127.0.0.1:")
    [none] = [f for f in verdict.findings if f.code == "webrtc-no-local-candidates"]
    assert none.confidence is Confidence.LIKELY and none.settle  # gathering completed with nothing
    # the recorder gave Chromium a credential; the dump has none, and nothing p2pdiag says carries one
    assert b"wrong-credential" not in gzip.decompress(path.read_bytes())
    [pc] = verdict.facts["peer_connections"]
    assert pc["candidate_errors"][0]["error_code"] == 401
    assert pc["ice_servers"] and all(u.startswith("turn:") for u in pc["ice_servers"])


def test_a_stun_answer_is_a_srflx_candidate_with_its_url():
    verdict = diagnose_dump(wi.load(DUMPS / "upgraded-stun.json.gz"))
    [pc] = verdict.facts["peer_connections"]
    [srflx] = [c for c in pc["local_candidates"] if c["type"] == "srflx"]
    assert srflx["url"].startswith("stun:127.0.0.1:") and srflx["related_port"] == srflx["port"]


def test_no_local_candidates_with_the_peers_candidate_received():
    verdict = diagnose_dump(wi.load(DUMPS / "no-local-candidates.json.gz"))
    [pc] = verdict.facts["peer_connections"]
    assert "connected" not in pc["connection_states"]
    assert pc["remote_candidates"], "the Node dialer's candidate reached the browser"
    assert verdict.exit_code == 3


def test_udp_blocked_is_read_from_unanswered_checks_and_a_silent_stun_server():
    verdict = diagnose_dump(wi.load(DUMPS / "udp-blocked.json.gz"))
    [udp] = [f for f in verdict.findings if f.code == "udp-blocked-local"]
    assert udp.confidence is Confidence.POSSIBLE and udp.settle  # ICE had not failed yet
    assert udp.data["checks_sent"] >= 20 and udp.data["answered"] == udp.data["received"] == 0
    [pc] = verdict.facts["peer_connections"]
    assert not any(c["type"] == "srflx" for c in pc["local_candidates"])
    assert all(p["responses_received"] == 0 for p in pc["pairs"])


def test_a_dump_whose_peer_connection_was_dropped_is_refused_in_one_line():
    """Recorded: the same attempt dumped 30 s later, when Chromium had dropped the closed peer connection."""
    path = DUMPS / "dropped-peer-connection.json.gz"
    with pytest.raises(TraceFileError, match="no peer connection"):
        diagnose_dump(wi.load(path))
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", str(path)], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_an_uncompressed_dump_gives_the_same_verdict(tmp_path):
    """The page's compression box unticked: the same JSON, not gzipped."""
    path = tmp_path / "webrtc_internals_dump.txt"
    path.write_bytes(gzip.decompress((DUMPS / "udp-blocked.json.gz").read_bytes()))
    assert detect(path) is Format.WEBRTC_INTERNALS
    plain, zipped = diagnose_dump(wi.load(path)), diagnose_dump(wi.load(DUMPS / "udp-blocked.json.gz"))
    assert plain.facts["dump"]["compressed"] is False
    assert [f.code for f in plain.findings] == [f.code for f in zipped.findings]
    assert plain.facts["peer_connections"] == zipped.facts["peer_connections"]


def test_a_trace_larger_than_a_dump_may_be_is_still_told_a_trace(tmp_path):
    """Sniffing for a dump reads 64 KiB and judges no size: a 129 MiB trace (sparse here) stays a trace."""
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        f.write(b'{"type": "header"}\n')
        f.truncate(wi.MAX_FILE_BYTES + (1 << 20))
    assert detect(path) is Format.TRACE
    with pytest.raises(TraceFileError, match="bytes"):
        wi.load(path)


def test_credentials_in_a_configuration_are_never_kept(tmp_path):
    doc = {"PeerConnections": {"1-1": {"rtcConfiguration": json.dumps({"iceServers": [
        {"urls": ["turn:user:secret@turn.example:3478"], "username": "alice", "credential": "hunter2"}]}),
        "updateLog": [], "stats": {}}}}
    path = tmp_path / "dump.txt"
    path.write_text(json.dumps(doc))
    dump = wi.load(path)
    [server] = dump.peer_connections[0].ice_servers
    assert server.urls == ("turn:turn.example:3478",) and server.has_credential
    text = json.dumps(diagnose_dump(dump).facts)
    assert "hunter2" not in text and "alice" not in text and "secret" not in text


def test_a_gzip_bomb_is_refused_as_it_inflates(tmp_path, monkeypatch):
    """Past MAX_JSON_BYTES once gunzipped: refused in one line, having inflated no more than the cap."""
    monkeypatch.setattr(wi, "MAX_JSON_BYTES", 1 << 20)
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = z.compress(b'{"PeerConnections": {"1-1": {"url": "') + z.compress(b" " * (64 << 20)) + z.flush()
    path = tmp_path / "bomb.gz"
    path.write_bytes(bomb)
    assert len(bomb) < 200_000
    assert detect(path) is Format.WEBRTC_INTERNALS
    with pytest.raises(TraceFileError, match="once gunzipped"):
        wi.load(path)


@pytest.mark.parametrize("cut", [10, 500, 2000])
def test_a_truncated_dump_is_refused_in_one_line(tmp_path, cut):
    data = (DUMPS / "upgraded.json.gz").read_bytes()[:cut]
    path = tmp_path / "cut.gz"
    path.write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--format", "webrtc-internals", str(path)],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("p2pdiag: error: ")


@pytest.mark.parametrize("content", [b'{"PeerConnections": 3}', b"[" * 100_000, b'{"getUserMedia": []}'])
def test_json_that_is_not_a_dump_is_refused(tmp_path, content):
    path = tmp_path / "odd.json"
    path.write_bytes(content)
    with pytest.raises(TraceFileError):
        diagnose_dump(wi.load(path))


def test_cli_reads_a_dump_as_json():
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json",
                             str(DUMPS / "turn-refused-relay-only.json.gz")], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    doc = json.loads(result.stdout)
    assert result.returncode == doc["exit_code"] == 3
    assert "turn-allocation-failed" in [f["code"] for f in doc["findings"]]
    assert doc["facts"]["dump"]["source"] == "chrome://webrtc-internals dump"
