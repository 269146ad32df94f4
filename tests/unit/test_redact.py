"""Redaction (p2pdiag/trace/redact.py): every recorded trace, redacted, gives its original's verdict, and
none of its addresses or peer ids."""

import ipaddress
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pdiag.diagnosis import diagnose
from p2pdiag.diagnosis.network import is_private
from p2pdiag.diagnosis.steps import short_peer_id
from p2pdiag.render.json import verdict_document
from p2pdiag.trace.file import Header, Trace, dumps, load, loads
from p2pdiag.trace.redact import KEPT, Redactor, redact
from p2pdiag.wire import envelope

ROOT = Path(__file__).resolve().parents[2]
TRACES = sorted((ROOT / "tests" / "traces").glob("*/*.jsonl"))
IDS = [f"{p.parent.name}/{p.stem}" for p in TRACES]

V4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d])")
V6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
ADVICE_ADDRESSES = {"203.0.113.7"}  # an example in relay-entry-rejected's advice, not from the trace
FINGERPRINT = ":".join(["AB", "CD", "EF", "01"] * 8)  # 32 groups: no IPv6 address
PEER = re.compile(r"12D3KooW[1-9A-HJ-NP-Za-km-z]{44}|Qm[1-9A-HJ-NP-Za-km-z]{44}")


def addresses(text: str) -> set[str]:
    """Every IP address in TEXT that redaction must replace (loopback and the like identify no one)."""
    found = set()
    for token in V4.findall(text) + V6.findall(text):
        try:
            ip = ipaddress.ip_address(token)
        except ValueError:
            continue
        if not any(ip.version == n.version and ip in n for n in KEPT):
            found.add(str(ip))
    return found


def as_original(redactor: Redactor, document: object) -> str:
    """DOCUMENT (an original verdict's JSON) with the placeholders the redactor gave the trace's addresses and
    peer ids put in (peer ids full and shortened); the addresses p2pdiag writes itself, in advice, stay."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False)
    for original, placeholder in redactor._peers.items():
        text = text.replace(original, placeholder).replace(short_peer_id(original), short_peer_id(placeholder))

    def known(m: re.Match) -> str:
        try:
            return str(redactor._ips.get(ipaddress.ip_address(m[0]), m[0]))
        except ValueError:
            return m[0]

    return re.sub(f"{V6.pattern}|{V4.pattern}", known, text)


@pytest.mark.parametrize("path", TRACES, ids=IDS)
def test_the_verdict_of_a_redacted_trace_is_the_original_verdict(path):
    original = load(path)
    redactor = Redactor(b"test")
    redacted = loads(dumps(redactor.trace(original)))  # through the file form, as a ticket's trace comes
    assert redacted.header.redacted
    before, after = diagnose(original), diagnose(redacted)
    facts = dict(after.facts)
    assert facts.pop("trace_redacted") is True and "trace_redacted" not in before.facts  # the one fact it adds
    assert [f.code for f in after.findings] == [f.code for f in before.findings]
    assert after.outcome is before.outcome and after.exit_code == before.exit_code
    assert [(s.key, s.status) for s in after.steps] == [(s.key, s.status) for s in before.steps]
    assert [(f.severity, f.confidence) for f in after.findings] == [(f.severity, f.confidence) for f in before.findings]
    assert json.dumps(facts, sort_keys=True, ensure_ascii=False) == as_original(redactor, before.facts)
    # every word too, once the placeholders are put in the original's (evidence, details, headline)
    document = verdict_document(after)
    del document["facts"]["trace_redacted"]
    shown = json.dumps(document, sort_keys=True, ensure_ascii=False)
    assert shown == as_original(redactor, verdict_document(before))


@pytest.mark.parametrize("path", TRACES, ids=IDS)
def test_a_redacted_trace_and_its_verdict_keep_no_address_or_peer_id(path):
    """Every address left is a placeholder (one may be the same text as another original address: a
    placeholder stays in its block, and the lab's addresses fill the first few of 203.0.113.0/24)."""
    text = path.read_text(encoding="utf-8")
    ips, peers = addresses(text), set(PEER.findall(text))
    assert peers, "a recorded trace names peers"
    raw_ids = {envelope.peer_id_bytes(p).hex() for p in peers}
    redactor = Redactor()
    redacted = redactor.trace(load(path))
    shown = dumps(redacted) + json.dumps(verdict_document(diagnose(redacted)))
    placeholders = {str(ip) for ip in redactor._ips.values()}
    assert ips <= {str(ip) for ip in redactor._ips}, "an address the redactor did not see"
    assert not (addresses(shown) - placeholders - ADVICE_ADDRESSES)
    assert not {ip for ip in ips - placeholders if ip in addresses(shown)}
    assert not {p for p in peers if p in shown}
    assert not {h for h in raw_ids if h in shown}, "a peer id left in a voucher's bytes"


def test_placeholders_keep_the_class_of_the_address():
    redactor = Redactor(b"test")
    for path in TRACES:
        redactor.trace(load(path))
    for text in ("10.20.30.40", "172.31.0.9", "192.168.1.77", "100.127.3.3", "169.254.9.9", "198.19.4.4", "8.8.8.8",
                 "192.0.2.55", "fd7a:115c:a1e0::1", "fe80::aa:bbff:fecc:dd", "2001:db8::99", "2606:4700::1111",
                 "::ffff:192.168.9.9", "::ffff:1.1.1.1"):
        redactor.ip(ipaddress.ip_address(text))
    assert len(redactor._ips) >= 8  # the lab's public, LAN and benchmarking networks, and more
    for original, placeholder in redactor._ips.items():
        assert placeholder != original
        assert is_private(str(placeholder)) == is_private(str(original)), (original, placeholder)
        for attribute in ("is_private", "is_global", "is_loopback", "is_link_local", "is_multicast", "is_reserved"):
            assert getattr(placeholder, attribute) == getattr(original, attribute), (original, placeholder, attribute)
    assert len(set(redactor._ips.values())) == len(redactor._ips), "two addresses share a placeholder"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ip4/10.1.2.3/udp/4001/quic-v1", "/ip4/10.0.0.1/udp/4001/quic-v1"),  # private stays private; the port stays
        ("10.1.2.3:4001 and 10.9.9.9:4001, 10.1.2.3.", "10.0.0.1:4001 and 10.0.0.2:4001, 10.0.0.1."),
        ("192.168.178.20 172.20.1.1 100.70.1.2 169.254.3.4", "192.168.0.1 172.16.0.1 100.64.0.1 169.254.0.1"),
        ("public 8.8.4.4 and 1.1.1.1", "public 11.0.0.1 and 11.0.0.2"),
        ("127.0.0.1 0.0.0.0 ::1 :: 224.0.0.251", "127.0.0.1 0.0.0.0 ::1 :: 224.0.0.251"),  # identify no one
        ("/ip6/2606:4700::6810:85e5/tcp/443", "/ip6/2a00::1/tcp/443"),
        ("[fe80::1c2b:3aff:fe4d:5e6f%eth0]:5000 fd12:3456::1", "[fe80::1%eth0]:5000 fc00::1"),
        ("::ffff:8.8.8.8", "::ffff:b00:1"),  # the IPv4 inside is redacted (11.0.0.1), written as Python writes it
        (f"at 12:34:56.789, sha-256 {FINGERPRINT}", f"at 12:34:56.789, sha-256 {FINGERPRINT}"),
        ("mac 02:42:ac:11:00:02", "mac 02:42:ac:11:00:02"),
        ("libp2p/0.8.1 /ipfs/id/1.0.0 yamux/1.0.0", "libp2p/0.8.1 /ipfs/id/1.0.0 yamux/1.0.0"),
        ("turn:alice:s3cret@turn.example.com:3478", "turn:turn.example.com:3478"),
        ("turns://bob@198.51.100.7:5349?transport=tcp", "turns://198.51.100.1:5349?transport=tcp"),
    ],
)
def test_text(text, expected):
    assert Redactor(b"test").text(text) == expected


def test_peer_ids_are_replaced_consistently_by_valid_peer_ids():
    redactor = Redactor(b"test")
    relay = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
    peer = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    text = redactor.text(f"/ip4/203.0.113.9/tcp/1/p2p/{relay}/p2p-circuit/p2p/{peer} ({relay})")
    assert relay not in text and peer not in text
    new_relay, new_peer = redactor.peer_id(relay), redactor.peer_id(peer)
    assert text == f"/ip4/203.0.113.1/tcp/1/p2p/{new_relay}/p2p-circuit/p2p/{new_peer} ({new_relay})"
    assert new_relay != new_peer and new_relay.startswith("12D3KooW") and new_peer.startswith("12D3KooW")
    assert envelope.peer_id_bytes(new_peer)  # base58: the voucher checks decode it
    assert Redactor(b"other").peer_id(relay) != new_relay and Redactor().peer_id(relay) != Redactor().peer_id(relay)


def test_turn_credentials_in_the_header_go():
    header = Header("dial", {"ice": {"turn": ["turn:u:p@203.0.113.3:3478"], "turn_user": "alice",
                                     "turn_credential": "s3cret"}, "relays": []}, "t", "0")
    redacted = Redactor(b"test").header(header)
    assert redacted.options == {"ice": {"turn": ["turn:203.0.113.1:3478"]}, "relays": []}
    text = dumps(Trace(redacted, ()))
    assert "alice" not in text and "s3cret" not in text and '"redacted":true' in text
    assert loads(text).header.redacted and not loads(dumps(Trace(header, ()))).header.redacted


def test_redacting_event_by_event_is_redacting_the_whole():
    """A live run's --trace redacts each event as it comes; analyze --redact the whole trace: the same."""
    path = ROOT / "tests" / "traces" / "relay-check" / "bad-relays.jsonl"
    trace = load(path)
    streaming = Redactor(b"test")
    header = streaming.header(trace.header)
    events = tuple(streaming.event(e) for e in trace.events)
    assert dumps(Trace(header, events)) == dumps(redact(trace, b"test"))


def test_each_voucher_check_fails_or_passes_as_before():
    """bad-relays.jsonl holds vouchers with a bad signature, the wrong domain, the wrong peer, an expired one."""
    path = ROOT / "tests" / "traces" / "relay-check" / "bad-relays.jsonl"
    before = diagnose(load(path)).facts
    after = diagnose(redact(load(path))).facts
    fails = [(r["label"], r.get("voucher", {}).get("failed")) for r in before["relays"]]
    assert [(r["label"], r.get("voucher", {}).get("failed")) for r in after["relays"]] == fails
    assert len({tuple(f or ()) for _, f in fails}) >= 3, fails  # several kinds of failure, not only passes


def test_a_voucher_that_is_not_an_envelope_stays_one():
    redactor = Redactor(b"test")
    assert redactor.voucher("") == ""
    assert redactor.voucher("zz") == "redacted"
    report = envelope.check_voucher(bytes.fromhex(redactor.voucher("0a05")), relay_peer_id=b"", peer_id=b"",
                                    expire=None, now_unix_s=None)
    assert report.failed[0].check is envelope.Check.ENVELOPE


def p2pdiag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize("view", [[], ["--json"]])
def test_analyze_redact(view):
    path = ROOT / "tests" / "traces" / "relay" / "dial-wrong-relay-id.jsonl"
    plain, redacted = p2pdiag("analyze", str(path), *view), p2pdiag("analyze", str(path), "--redact", *view)
    assert redacted.returncode == plain.returncode == 4, redacted.stderr
    peers = set(PEER.findall(path.read_text()))
    assert peers and all(p in plain.stdout or short_peer_id(p) in plain.stdout for p in peers)
    assert not [p for p in peers if p in redacted.stdout or short_peer_id(p) in redacted.stdout]
    if view:
        assert json.loads(redacted.stdout)["facts"]["trace_redacted"] is True
    else:
        assert "Note: redacted: IP addresses and peer ids are placeholders" in redacted.stdout


def test_redact_takes_no_value():
    result = p2pdiag("analyze", "--redact=yes", str(TRACES[0]))
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("p2pdiag: error: ") and "--redact" in line


@pytest.mark.parametrize("line", ["turn:" * 200_000, "8.8.8.8 " * 120_000, "1:" * 500_000, "/p2p/" * 200_000,
                                  "12D3KooW" + "a" * 1_000_000], ids=lambda line: line[:10])
def test_a_hostile_line_of_a_mebibyte_takes_seconds_not_minutes(line):
    """Every pattern is bounded: a line of `turn:` repeated was quadratic (40,000 of them took 45 s)."""
    started = time.monotonic()
    Redactor(b"test").text(line)
    assert time.monotonic() - started < 20


def same_verdict(redactor: Redactor, before, after) -> str:
    """AFTER (of the redacted input) is BEFORE (of the original) with the placeholders in; its JSON text."""
    assert [f.code for f in after.findings] == [f.code for f in before.findings]
    assert (after.outcome, after.exit_code) == (before.outcome, before.exit_code)
    assert [(s.key, s.status) for s in after.steps] == [(s.key, s.status) for s in before.steps]
    assert [(f.severity, f.confidence) for f in after.findings] == [(f.severity, f.confidence) for f in before.findings]
    shown = json.dumps(verdict_document(after), sort_keys=True, ensure_ascii=False)
    assert shown == as_original(redactor, verdict_document(before))
    return shown


JS_LOGS = sorted((ROOT / "tests" / "traces" / "jslog").glob("dial-*.log"))


@pytest.mark.parametrize("path", JS_LOGS, ids=[p.stem for p in JS_LOGS])
def test_the_verdict_of_a_redacted_js_log_is_the_original_verdict(path):
    """`analyze --redact` of a js-libp2p log: each line is redacted before it is read, so nothing of the
    original reaches the verdict, and the verdict is the original's with the placeholders in."""
    from p2pdiag.diagnosis.jslog import diagnose_jslog
    from p2pdiag.evidence import jslog

    redactor = Redactor(b"test")
    before, after = diagnose_jslog(jslog.load(path)), diagnose_jslog(jslog.load(path, redactor.text))
    text = path.read_text(encoding="utf-8", errors="replace")
    peers = set(PEER.findall(text))
    assert peers and set(redactor._peers) == peers, "every peer id in the log was met and replaced"
    shown = same_verdict(redactor, before, after)
    assert not {p for p in peers if p in shown or short_peer_id(p) in shown}


def test_analyze_redact_of_a_js_log_says_it_is_redacted():
    log = str(ROOT / "tests" / "traces" / "jslog" / "dial-no-reservation.log")
    plain = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", log], capture_output=True,
                           text=True, cwd=ROOT, check=False)
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", "--redact", log],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == plain.returncode == 4, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["facts"]["trace_redacted"] is True
    assert not set(PEER.findall(Path(log).read_text())) & set(PEER.findall(result.stdout))


DUMPS = sorted(p for p in (ROOT / "tests" / "traces" / "webrtc-internals").glob("*.json.gz") if "dropped" not in p.name)


@pytest.mark.parametrize("path", DUMPS, ids=[p.name for p in DUMPS])
def test_the_verdict_of_a_redacted_webrtc_internals_dump_is_the_original_verdict(path):
    """Every string of the dump (SDP, candidates, the stats' address series) is redacted before it is
    read: an address keeps its class and its port, so ICE's story and the verdict stay the same."""
    from p2pdiag.diagnosis.webrtc_internals import diagnose_dump
    from p2pdiag.evidence import webrtc_internals

    redactor = Redactor(b"test")
    before = diagnose_dump(webrtc_internals.load(path))
    after = diagnose_dump(webrtc_internals.load(path, redactor.text))
    shown = same_verdict(redactor, before, after)
    assert not (addresses(json.dumps(verdict_document(before))) - ADVICE_ADDRESSES) & addresses(shown) - {
        str(ip) for ip in redactor._ips.values()}
