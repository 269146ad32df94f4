"""`p2pdiag analyze` of recorded js-libp2p 3.x debug logs (tests/record/jslog.py re-records the Node
ones, tests/record/jslog_browser.py the browser console ones from real Chromium): codes and facts per
log, never text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.verdicts import assert_codes
from support.work import cost

from p2pdiag.diagnosis.jslog import diagnose_jslog
from p2pdiag.diagnosis.model import Confidence, Outcome
from p2pdiag.errors import TraceFileError
from p2pdiag.evidence import events, jslog
from p2pdiag.evidence.detect import Format, detect

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "tests" / "traces" / "jslog"

# log, outcome, codes that must be there, codes that must not, facts (a subset of the verdict's facts),
# and what the log itself was (a subset of facts["log"])
TRACE = {"trace_level": True, "layout": "iso"}
BROWSER_READS = (("", {"trace_level": True, "layout": "browser-time"}),
                 ("-no-timestamps", {"trace_level": True, "layout": "browser", "first_time": None, "span_s": None}),
                 ("-raw", {"trace_level": True, "layout": "browser-raw", "first_time": None}))
TABLE = [
    ("dial-webrtc-upgraded", Outcome.UPGRADED, {"relay-limited", "relay-limit-unit"},
     {"relay-cut-duration", "relay-cut-data", "relay-cut-unexplained", "peer-no-webrtc-signaling",
      "upgrade-not-attempted"},
     {"relay_cut": None}, TRACE),
    # the dialer beside listen-upgraded.log: the same connection from the other side
    ("dial-to-listen-upgraded", Outcome.UPGRADED, {"relay-limited"},
     {"relay-cut-duration", "relay-cut-data", "relay-cut-unexplained", "upgrade-not-attempted"},
     {"relay_cut": None}, TRACE),
    # a js dialer's relayed dial to `p2pdiag listen` (beside its trace, listen-p2pdiag-beside-js-dialer.jsonl)
    ("dial-to-p2pdiag-listen", Outcome.RELAYED_ONLY, {"upgrade-not-attempted"},
     {"relay-cut-duration", "relay-cut-data", "relay-cut-unexplained"}, {"webrtc_connection": None}, TRACE),
    # UDP dropped in the namespace of relay, listener and dialer (tests/record/jslog_udp.py): signaling
    # works over the relay, ICE never connects, js-libp2p gives up at its timeout
    ("dial-webrtc-udp-blocked", Outcome.RELAYED_ONLY, {"webrtc-ice-failed", "relay-limited"},
     {"webrtc-no-remote-candidates", "webrtc-signaling-unsupported", "upgrade-not-attempted"},
     {"webrtc_connection": None, "relay_cut": None}, TRACE),
    # a real flaky attempt of the same dial: the initiator refused the peer's only candidate, timed out at 6 s
    ("dial-webrtc-failed-attempt", Outcome.RELAYED_ONLY, {"webrtc-no-remote-candidates", "relay-limited"},
     {"relay-cut-duration", "relay-cut-unexplained", "webrtc-signaling-unsupported"},
     {"webrtc_connection": None, "relay_cut": None}, TRACE),
    ("dial-no-reservation", Outcome.UNREACHABLE, {"hop-no-reservation"}, {"relay-limited"},
     {"relayed_connection": None, "webrtc_connection": None}, TRACE),
    ("dial-no-reservation-colour-no-trace", Outcome.UNREACHABLE, {"hop-no-reservation"}, {"relay-limited"},
     {"relayed_connection": None}, {"trace_level": False, "layout": "colour", "span_s": None, "first_time": None}),
    ("dial-no-webrtc-signaling", Outcome.RELAYED_ONLY, {"webrtc-signaling-unsupported", "relay-limited"},
     {"peer-no-webrtc-signaling", "relay-cut-unexplained", "upgrade-not-attempted"},
     {"webrtc_connection": None, "relay_cut": None}, TRACE),
    ("dial-relay-duration-cut", Outcome.RELAYED_ONLY,
     {"relay-cut-duration", "relay-limit-unit", "relay-limited", "upgrade-not-attempted"},
     {"relay-cut-data", "relay-cut-unexplained"}, {"webrtc_connection": None}, TRACE),
    ("dial-relay-duration-cut-no-trace", Outcome.RELAYED_ONLY,
     {"relay-cut-duration", "relay-limit-unit", "relay-limited", "upgrade-not-attempted"},
     {"relay-cut-data", "relay-cut-unexplained"},
     {"webrtc_connection": None}, {"trace_level": False, "layout": "iso"}),
    ("dial-relay-data-cut", Outcome.RELAYED_ONLY, {"relay-cut-data", "relay-limited", "upgrade-not-attempted"},
     {"relay-cut-duration", "relay-cut-unexplained"}, {"webrtc_connection": None}, TRACE),
    # the listener opened an app protocol the dialer handles with js-libp2p's defaults: refused on the relay
    ("dial-limited-stream-refused", Outcome.RELAYED_ONLY,
     {"limited-stream-refused", "relay-limited", "upgrade-not-attempted"},
     {"relay-cut-duration", "relay-cut-data", "relay-cut-unexplained"}, {"webrtc_connection": None}, TRACE),
    # js-libp2p in headless Chromium dialing a js listener through the js relay, its console as copied
    # from DevTools with timestamps, without, and as forwarded unformatted (%c and CSS left in)
    *((f"browser-webrtc-upgraded{suffix}", Outcome.UPGRADED, {"relay-limited", "relay-limit-unit"},
       {"relay-cut-duration", "relay-cut-data", "relay-cut-unexplained", "peer-no-webrtc-signaling",
        "webrtc-signaling-unsupported", "upgrade-not-attempted"}, {"relay_cut": None}, read)
      for suffix, read in BROWSER_READS),
    *((f"browser-no-reservation{suffix}", Outcome.UNREACHABLE, {"hop-no-reservation"}, {"relay-limited"},
       {"relayed_connection": None, "webrtc_connection": None}, read) for suffix, read in BROWSER_READS[:2]),
    *((f"browser-no-webrtc-signaling{suffix}", Outcome.RELAYED_ONLY, {"webrtc-signaling-unsupported", "relay-limited"},
       {"peer-no-webrtc-signaling", "relay-cut-unexplained", "upgrade-not-attempted"},
       {"webrtc_connection": None, "relay_cut": None}, read) for suffix, read in BROWSER_READS[:2]),
    # js-libp2p 2.x (interop/js2, @libp2p/webrtc 5.2.20; tests/record/jslog2.py): the same events give the
    # same codes; a 2.x log has no Limit of the relayed connection, so no relay-limited. 5.2.20 closes the
    # relayed connection after each upgrade attempt (js-libp2p #3015), after a success too
    ("v2-dial-webrtc-upgraded", Outcome.UPGRADED, {"remote-closed-after-upgrade"},
     {"reconnect-loop", "relay-cut-duration", "relay-cut-unexplained", "upgrade-not-attempted",
      "webrtc-signaling-unsupported"}, {"relay_cut": None}, TRACE),
    ("v2-dial-no-reservation", Outcome.UNREACHABLE, {"hop-no-reservation"}, {"relay-limited", "reconnect-loop"},
     {"relayed_connection": None, "webrtc_connection": None}, TRACE),
    # UDP blocked, the peer tagged keep-alive: 3 rounds of relayed connection, failed upgrade, closed, redial
    ("v2-dial-keepalive-loop-udp-blocked", Outcome.RELAYED_ONLY, {"remote-closed-after-upgrade", "reconnect-loop"},
     {"upgrade-not-attempted", "relay-cut-unexplained"}, {"webrtc_connection": None, "relay_cut": None}, TRACE),
]


@pytest.mark.parametrize(("name", "outcome", "present", "absent", "facts", "read"), TABLE, ids=[r[0] for r in TABLE])
def test_recorded_log_gives_its_verdict(name, outcome, present, absent, facts, read):
    path = LOGS / f"{name}.log"
    assert detect(path) is Format.JS_LOG
    verdict = diagnose_jslog(jslog.load(path))
    assert_codes(verdict, outcome, present, absent)
    assert facts.items() <= verdict.facts.items()
    assert verdict.facts["peer_id"] and verdict.facts["peer_id"].startswith("12D3KooW")
    log = verdict.facts["log"]
    assert read.items() <= log.items()
    assert log["namespaces"] == ("2.x" if name.startswith("v2-") else "3.x")
    assert log["lines"] == log["records"] + log["continuation_lines"] + log["foreign_lines"]
    assert 0 < log["recognised"] < log["records"]
    assert log["trace_level"] or any("trace" in lack for lack in log["lacks"])
    assert log["first_time"] or any("timestamps" in lack for lack in log["lacks"])


def test_cut_facts():
    duration = diagnose_jslog(jslog.load(LOGS / "dial-relay-duration-cut.log")).facts["relay_cut"]
    assert duration["cause"] == "duration" and duration["duration_limit_s"] == 2.0
    assert 1.0 <= duration["age_s"] <= 5.0
    data = diagnose_jslog(jslog.load(LOGS / "dial-relay-data-cut.log")).facts["relay_cut"]
    assert data["cause"] == "data" and data["data_limit"] == 2048
    assert 0.75 * 2048 <= data["bytes_written"] <= 2048


def test_without_trace_level_the_cut_is_less_sure_and_says_how_to_settle():
    sure = diagnose_jslog(jslog.load(LOGS / "dial-relay-duration-cut.log"))
    thin = diagnose_jslog(jslog.load(LOGS / "dial-relay-duration-cut-no-trace.log"))
    [cut] = [f for f in sure.findings if f.code == "relay-cut-duration"]
    [thin_cut] = [f for f in thin.findings if f.code == "relay-cut-duration"]
    assert cut.confidence is Confidence.LIKELY
    assert thin_cut.confidence is Confidence.POSSIBLE and "trace" in (thin_cut.settle or "")


@pytest.mark.parametrize("content", [b"hello\nworld\n", bytes(range(256)) * 4, b"  \n\n just text\n"])
def test_other_files_are_refused_in_one_line(tmp_path, content):
    path = tmp_path / "ticket.txt"
    path.write_bytes(content)
    with pytest.raises(TraceFileError, match="neither a p2pdiag trace"):
        detect(path)
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", str(path)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("p2pdiag: error: ")
    assert "Traceback" not in result.stderr


def test_cli_reads_a_log(tmp_path):
    log = str(LOGS / "dial-no-reservation.log")
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", log], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    doc = json.loads(result.stdout)
    assert result.returncode == doc["exit_code"] == 4
    assert [f["code"] for f in doc["findings"]] == ["hop-no-reservation"]


def test_a_long_log_is_streamed():
    """200,000 lines are read fast (bench/jslog_read.py times a file of them), and memory does not grow
    with the lines: only the facts found are kept, at most MAX_FACTS."""
    sample = (LOGS / "dial-relay-duration-cut.log").read_bytes().splitlines()
    quiet = [line for line in sample if b" libp2p:tcp:connection" in line]  # no facts in these

    def lines(source: list[bytes], n: int):
        for i in range(n):
            yield i + 1, source[i % len(source)]

    log = jslog.read(lines(sample, 200_000), "long")
    assert log.lines == 200_000 and len(log.facts) <= jslog.MAX_FACTS
    # work, counted not timed (bench/jslog_read.py times it): ten times the lines, ten times the work
    short, long = (cost(lambda n=n: jslog.read(lines(sample, n), "counted")) for n in (2_000, 20_000))
    assert long.lines <= 10 * short.lines * 1.05, (short.lines, long.lines)
    tracemalloc.start()
    jslog.read(lines(quiet, 5_000), "short")
    _, short_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    jslog.read(lines(quiet, 50_000), "long")
    _, long_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert long_peak < 2 * short_peak + 100_000, (short_peak, long_peak)


def test_a_protocol_list_wrapped_over_lines_is_read_whole():
    """Node's util.inspect wraps a long array over lines; the protocols on the later lines count too."""
    one = (LOGS / "dial-webrtc-upgraded.log").read_text().splitlines()
    wrapped = []
    for line in one:
        m = jslog.ISO_RECORD.match(line)
        if m is not None and m.group(2) == "libp2p:identify" and "and protocols [ " in line:
            head, _, items = line.partition("[ ")
            wrapped += [head + "["] + [f"  {p.strip()}," for p in items.rstrip(" ]").split(",")] + ["]"]
        else:
            wrapped.append(line)
    log = jslog.read(((n, s.encode()) for n, s in enumerate(wrapped, start=1)), "wrapped.log")
    whole = jslog.read(((n, s.encode()) for n, s in enumerate(one, start=1)), "one.log")
    protocols = [f.protocols for f in log.facts if type(f).__name__ == "PeerIdentified"]
    assert protocols == [f.protocols for f in whole.facts if type(f).__name__ == "PeerIdentified"]
    assert any("/webrtc-signaling/0.0.1" in p for p in protocols)
    assert {f.code for f in diagnose_jslog(log).findings} == {f.code for f in diagnose_jslog(whole).findings}


# a listening node's log: outcome, codes that must be there, codes that must not, and per relay its reservation
LISTEN_TABLE = [
    ("listen-reservation", Outcome.LISTENED, set(), {"reservation-lost", "reservation-expired"},
     {"inbound_connections": 0}, [{"made": 1, "removed": 0, "held": True, "lost_at_s": None}]),
    ("listen-upgraded", Outcome.LISTENED, set(), {"reservation-lost", "reservation-expired"},
     {"inbound_connections": 1}, [{"made": 1, "removed": 0, "held": True}]),
    # the listener's side of dial-webrtc-udp-blocked: js-libp2p logs the WebRTC connection "successfully
    # upgraded" after the dialer reset signaling; it is not counted
    ("listen-webrtc-udp-blocked", Outcome.LISTENED, {"webrtc-upgrade-abandoned"}, {"reservation-lost"},
     {"inbound_connections": 1, "webrtc_connections": []}, [{"made": 1, "held": True}]),
    # the relay restarted 3 s in; js-libp2p 3.x never reserved on it again (js-libp2p #3601)
    ("listen-relay-restarted", Outcome.UNREACHABLE, {"reservation-lost"}, {"reservation-expired"},
     {"inbound_connections": 0, "webrtc_connections": []}, [{"made": 1, "removed": 1, "held": False}]),
]


@pytest.mark.parametrize(("name", "outcome", "present", "absent", "facts", "reservations"), LISTEN_TABLE,
                         ids=[r[0] for r in LISTEN_TABLE])
def test_recorded_listener_log_gives_its_verdict(name, outcome, present, absent, facts, reservations):
    path = LOGS / f"{name}.log"
    assert detect(path) is Format.JS_LOG
    verdict = diagnose_jslog(jslog.load(path))
    codes = {f.code for f in verdict.findings}
    assert verdict.outcome is outcome, (verdict.outcome, verdict.headline)
    assert present <= codes and not (absent & codes), codes
    got = verdict.facts
    assert {k: got[k] for k in facts} == facts, {k: got[k] for k in facts}
    assert got["log"]["namespaces"] == "3.x"
    assert len(got["reservations"]) == len(reservations)
    for life, want in zip(got["reservations"], reservations, strict=True):
        assert {k: life[k] for k in want} == want, life
        assert life["expiry"] and life["expiry"].endswith("Z")  # read from js-libp2p's Date.toString()
    if "reservation-lost" in codes:
        [lost] = [f for f in verdict.findings if f.code == "reservation-lost"]
        assert lost.confidence is Confidence.LIKELY and lost.data["after_s"] > 10
        assert got["reservations"][0]["lost_at_s"] is not None


def test_the_upgraded_listener_answered_one_webrtc_upgrade():
    verdict = diagnose_jslog(jslog.load(LOGS / "listen-upgraded.log"))
    assert len(verdict.facts["webrtc_connections"]) == 1 and len(verdict.facts["dialers"]) == 1


def test_a_reservation_past_its_expiry_without_a_refresh_is_a_warning():
    """The recorded listener with the relay's expiry moved to 2 s after the reservation: js-libp2p would
    refresh only 30 s in, so the expiry passes first."""
    lines = (LOGS / "listen-upgraded.log").read_bytes().splitlines()
    [at] = [i for i, line in enumerate(lines) if b"created reservation on relay peer" in line]
    made = datetime.fromisoformat(lines[at].split(b" ", 1)[0].decode())
    soon = (made + timedelta(seconds=2)).strftime("%a %b %d %Y %H:%M:%S GMT+0000").encode()
    moved = list(lines)
    moved[at] = re.sub(rb"expiry date is .*", b"expiry date is " + soon + b" (Coordinated Universal Time)", lines[at])
    assert moved != lines
    verdict = diagnose_jslog(jslog.read(enumerate(moved, start=1), "moved.log"))
    assert "reservation-expired" in {f.code for f in verdict.findings}
    assert verdict.outcome is Outcome.LISTENED


def _lines(*texts: str):
    return ((n, t.encode()) for n, t in enumerate(texts, start=1))


PEER = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"


def test_browser_times_of_day_give_relative_timing_across_midnight():
    log = jslog.read(_lines(f"23:59:59.500 peer.js:10 libp2p:connection-manager dial {PEER} +0ms",
                            "23:59:59.400 peer.js:10 libp2p:transports a line a little out of order +1ms",
                            "00:00:00.250 peer.js:10 libp2p:connection-manager:dial-queue dial to /ip4/1.2.3.4/tcp/1 "
                            "succeeded +750ms"), "midnight.log")
    assert log.layout == "browser-time" and log.times_of_day_only
    assert log.records == 3 and log.recognised == 2
    assert log.span_s == pytest.approx(0.75)
    assert [f.t_s for f in log.facts] == [pytest.approx(0.0), pytest.approx(0.75)]
    lacks = diagnose_jslog(log).facts["log"]["lacks"]
    assert any("date" in lack for lack in lacks)


def test_a_time_that_is_not_one_leaves_the_record_untimed():
    log = jslog.read(_lines(f"25:61:00.000 peer.js:10 libp2p:connection-manager dial {PEER} +0ms"), "bad.log")
    assert log.records == 1 and not log.has_times and log.facts[0].t_s is None


def test_unformatted_console_reads_as_the_formatted_one():
    """The same run forwarded unformatted (%c, CSS arguments, unquoted arrays) gives the same verdict as
    copied from DevTools; only what the forward renders as a bare class name (an RTCIceCandidate) is lost."""
    raw = diagnose_jslog(jslog.load(LOGS / "browser-webrtc-upgraded-raw.log"))
    copied = diagnose_jslog(jslog.load(LOGS / "browser-webrtc-upgraded-no-timestamps.log"))
    assert raw.outcome is copied.outcome
    assert [f.code for f in raw.findings] == [f.code for f in copied.findings]
    assert {k: v for k, v in raw.facts.items() if k != "log"} == {k: v for k, v in copied.facts.items() if k != "log"}
    assert 0 < copied.facts["log"]["recognised"] - raw.facts["log"]["recognised"] <= 2


@pytest.mark.parametrize("first", [
    "12:00:01.002 peer.js:15293 libp2p:transports adding transport @libp2p/websockets +0ms",
    "VM12:1 libp2p:transports adding transport @libp2p/websockets +0ms",
    "libp2p:transports adding transport @libp2p/websockets +0ms",
    "%clibp2p:transports %cadding transport %s%c +0ms color: #0099FF color: inherit @libp2p/websockets color: #0099FF",
])
def test_a_browser_console_line_is_told_from_content(tmp_path, first):
    path = tmp_path / "console.txt"
    path.write_text(first + "\n")
    assert detect(path) is Format.JS_LOG
    [record] = [jslog.browser_record(first)]
    assert record is not None and record[2] == "libp2p:transports"
    assert record[3] == "adding transport @libp2p/websockets"


@pytest.mark.parametrize("text", ["a=candidate:1 1 UDP 2114977791 127.0.0.1 51222 typ host",
                                  "    at YamuxStream.send (http://127.0.0.1:1/peer.js:13286:13)",
                                  "helia:blockstore put +0ms", "libp2p is a library"])
def test_other_console_lines_are_not_records(text):
    assert jslog.browser_record(text) is None


def test_a_refused_limited_stream_names_its_protocol_and_side():
    verdict = diagnose_jslog(jslog.load(LOGS / "dial-limited-stream-refused.log"))
    [refused] = [f for f in verdict.findings if f.code == "limited-stream-refused"]
    assert refused.confidence is Confidence.CERTAIN
    facts = [f for f in jslog.load(LOGS / "dial-limited-stream-refused.log").facts
             if isinstance(f, events.LimitedStreamRefused)]
    assert facts and facts[0].protocol == "/p2pdiag/app/1.0.0" and facts[0].opened_by_remote is True
    assert facts[0].connection == verdict.facts["relayed_connection"]
    # no other recorded log has the refusal
    others = [p for p in LOGS.glob("*.log") if p.name not in ("dial-limited-stream-refused.log",
                                                               "listen-reservation.log")]
    assert all(not any(isinstance(f, events.LimitedStreamRefused) for f in jslog.load(p).facts) for p in others)


@pytest.mark.parametrize("files", [("browser-no-reservation.log",),
                                   ("browser-webrtc-upgraded.log", "listen-upgraded.log")])
def test_a_browser_console_has_no_wall_clock_and_goes_on_a_timeline_redacted(files):
    """Its times of day are not a wall clock: alone, beside a Node log, and redacted, it gives a verdict."""
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", "--redact",
                             *(str(LOGS / f) for f in files)], capture_output=True, text=True, cwd=ROOT, check=False)
    doc = json.loads(result.stdout)
    assert result.returncode == doc["exit_code"] in (0, 3, 4), result.stderr
    assert "internal error" not in result.stderr


def _finding(verdict, code: str):
    [found] = [f for f in verdict.findings if f.code == code]
    return found


def test_the_2x_reconnect_loop_has_its_rounds_and_period():
    verdict = diagnose_jslog(jslog.load(LOGS / "v2-dial-keepalive-loop-udp-blocked.log"))
    loop = verdict.facts["reconnect_loop"]
    assert loop["rounds"] == 3 and len(loop["intervals_s"]) == 2
    assert min(loop["intervals_s"]) <= loop["period_s"] <= max(loop["intervals_s"])
    # js-libp2p's reconnect queue backs off: each return comes later than the one before
    assert 0 < loop["intervals_s"][0] < loop["intervals_s"][1]
    closed = _finding(verdict, "remote-closed-after-upgrade")
    assert closed.data["closed_by"] == "dialer" and closed.data["upgraded"] is False
    assert 0 <= closed.data["after_upgrade_s"] <= 1.0
    assert _finding(verdict, "reconnect-loop").confidence is Confidence.CERTAIN


def test_the_2x_dialer_closes_the_relayed_connection_after_a_success_too():
    verdict = diagnose_jslog(jslog.load(LOGS / "v2-dial-webrtc-upgraded.log"))
    closed = _finding(verdict, "remote-closed-after-upgrade")
    assert closed.data["closed_by"] == "dialer" and closed.data["upgraded"] is True
    assert "reconnect_loop" not in verdict.facts


def test_3x_logs_show_no_close_after_the_upgrade():
    """@libp2p/webrtc 6 keeps the relayed connection; what a 3.x dialer closes, it closes when it stops."""
    for name in [row[0] for row in TABLE if not row[0].startswith("v2-")]:
        codes = {f.code for f in diagnose_jslog(jslog.load(LOGS / f"{name}.log")).findings}
        assert not codes & {"remote-closed-after-upgrade", "reconnect-loop"}, (name, codes)


def test_a_2x_upgrade_that_opened_no_stream_is_not_an_upgrade():
    """5.2.20 "connects" when the signaling stream merely ends: in the loop log such a connection is
    upgraded, then closed on an error without identify; it is not counted."""
    log = jslog.load(LOGS / "v2-dial-keepalive-loop-udp-blocked.log")
    assert any(type(f).__name__ == "WebRTCUpgraded" for f in log.facts)
    assert diagnose_jslog(log).facts["webrtc_connection"] is None
