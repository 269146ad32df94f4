"""relay-check's diagnosis of recorded real runs (tests/record/relay_check.py re-records them): one row per case.

Each row: the trace, the outcome, and per relay its verdict, the finding codes it must have and
those it must not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pdiag.diagnosis import diagnose
from p2pdiag.diagnosis.model import Outcome, Severity
from p2pdiag.exitcodes import ExitCode
from p2pdiag.render.json import dumps, verdict_document
from p2pdiag.trace.file import load, loads

TRACES = Path(__file__).resolve().parents[1] / "traces" / "relay-check"
LIMIT_CODES = {"relay-limit-unit", "relay-limit-too-small", "relay-limit-early", "relay-limit-inconsistent"}

BAD_RELAYS = {
    "r1": ("fail", {"voucher-bad-signature"}, {"voucher-wrong-peer", "relay-loop-failed"}),
    "r2": ("fail", {"voucher-wrong-peer"}, {"voucher-bad-signature", "relay-loop-failed"}),
    "r3": ("fail", {"voucher-bad-signature"}, {"voucher-wrong-peer"}),
    "r4": ("fail", {"reservation-ttl", "voucher-expiration"}, {"voucher-bad-signature"}),
    "r5": ("fail", {"hop-unknown-status"}, {"reserve-unanswered"}),
    "r6": ("fail", {"reserve-unanswered", "step-timeout"}, {"hop-unknown-status"}),
    "r7": ("fail", {"relay-loop-failed"}, {"voucher-bad-signature"}),
}

# trace, outcome, {relay label: (verdict, codes present, codes absent)}
TABLE = [
    ("py-default", Outcome.RELAYS_OK, {"r1": ("pass", set(), LIMIT_CODES | {"reservation-addrs"}),
                                        "r2": ("pass", set(), LIMIT_CODES)}),
    ("py-short-measured", Outcome.RELAYS_OK, {"r1": ("warn", {"relay-limit-too-small"},
                                                     {"relay-limit-unit", "relay-limit-early"})}),
    ("js-default", Outcome.RELAYS_OK, {"r1": ("warn", {"relay-limit-unit"}, {"relay-limit-too-small"})}),
    ("js-short-measured", Outcome.RELAYS_OK, {"r1": ("warn", {"relay-limit-unit", "relay-limit-too-small"},
                                                     {"relay-limit-early"})}),
    ("js-slots-full", Outcome.RELAYS_OK, {"r1": ("warn", {"relay-slots-full", "relay-slots-not-freed"},
                                                 {"reservation-refused"})}),
    ("not-a-relay", Outcome.RELAY_PROBLEM, {"r1": ("fail", {"relay-no-hop"}, {"reserve-unanswered"})}),
    ("nothing-listens", Outcome.RELAY_PROBLEM, {"r1": ("fail", {"relay-unreachable"}, {"step-timeout"})}),
    ("bad-relays", Outcome.RELAY_PROBLEM, BAD_RELAYS),
    ("corrupting-relays", Outcome.RELAY_PROBLEM, {
        "r1": ("fail", {"relay-loop-failed"}, {"relay-transfer-failed"}),  # every chunk: the pings fail
        # past the pings: the payload's hash differs; a relay that changes bytes fails
        "r2": ("fail", {"relay-transfer-failed"}, {"relay-loop-failed"}),
    }),
    # recorded before the loop ran raw on the circuit (Noise and yamux over it): analyze still reads them
    ("secured-loop-py-default", Outcome.RELAYS_OK,
     {"r1": ("pass", set(), LIMIT_CODES), "r2": ("pass", set(), LIMIT_CODES)}),
    ("secured-loop-bad-relays", Outcome.RELAY_PROBLEM, BAD_RELAYS),
    ("out-of-time", Outcome.RELAY_PROBLEM, {"r1": ("fail", {"relay-check-incomplete"}, set())}),
    ("from-file", Outcome.RELAY_PROBLEM, {"r1": ("pass", set(), set())}),
]


def _relays(verdict):
    return {r["label"]: r for r in verdict.facts["relays"]}


@pytest.mark.parametrize(("name", "outcome", "relays"), TABLE, ids=[row[0] for row in TABLE])
def test_recorded_trace_gives_its_verdict(name, outcome, relays):
    verdict = diagnose(load(TRACES / f"{name}.jsonl"))
    assert verdict.outcome is outcome
    rows = _relays(verdict)
    assert set(rows) == set(relays)
    for label, (want, present, absent) in relays.items():
        codes = set(rows[label]["finding_codes"])
        assert rows[label]["verdict"] == want, (label, codes)
        assert present <= codes, (label, codes)
        assert not (absent & codes), (label, codes)
    assert all(f.evidence and f.advice for f in verdict.findings)


def test_every_trace_in_the_folder_is_in_the_table():
    assert {p.stem for p in TRACES.glob("*.jsonl")} == {row[0] for row in TABLE}


def test_each_misbehaviour_names_the_voucher_check_that_failed():
    rows = _relays(diagnose(load(TRACES / "bad-relays.jsonl")))
    assert rows["r1"]["voucher"]["failed"] == ["signature"]
    assert rows["r2"]["voucher"]["failed"] == ["peer"]
    assert rows["r3"]["voucher"]["failed"] == ["domain"]
    assert rows["r4"]["voucher"]["failed"] == ["expiration"]
    assert rows["r4"]["reservation"]["ttl_s"] < 0
    assert rows["r5"]["reservation"]["status"] == "UNKNOWN(999)"
    assert rows["r6"]["reservation"]["error_kind"] == "timeout"
    assert rows["r7"]["loop"]["failed_stage"] == "ping"  # the loop is raw: the relay left the ping unanswered


def test_traces_of_the_secured_loop_keep_their_steps():
    verdict = diagnose(load(TRACES / "secured-loop-py-default.jsonl"))
    assert "r1.loop.secure" in {s.key for s in verdict.steps}
    assert _relays(verdict)["r1"]["loop"]["ok"]
    assert _relays(diagnose(load(TRACES / "secured-loop-bad-relays.jsonl")))["r7"]["loop"]["failed_stage"] == "secure"
    raw = diagnose(load(TRACES / "py-default.jsonl"))
    assert "r1.loop.secure" not in {s.key for s in raw.steps} and "r1.loop.ping" in {s.key for s in raw.steps}


def test_a_passing_relay_has_every_value_measured():
    row = _relays(diagnose(load(TRACES / "py-default.jsonl")))["r1"]
    assert row["connect"]["ok"] and row["identify"]["hop"]
    assert row["reservation"]["ttl_s"] > 3000 and row["reservation"]["addrs"]
    assert row["voucher"]["ok"] and len(row["voucher"]["checks"]) == 9
    assert row["refresh"]["ok"]
    loop = row["loop"]
    assert loop["ok"] and len(loop["rtt_s"]) >= 2 and loop["throughput"]["bytes_per_s"] > 0
    assert loop["hop_limit"] == loop["stop_limit"] == {"duration": 3600, "data_bytes": 1 << 30}
    assert row["drop"] == {"attempts": 1, "status": "NO_RESERVATION", "ok": True}
    assert set(row["cells"]) == {"reachable", "hop", "reservation", "limits", "voucher", "loop", "verdict"}


def test_measured_limits_beside_the_announced():
    for name, unit_suspect in (("py-short-measured", False), ("js-short-measured", True)):
        row = _relays(diagnose(load(TRACES / f"{name}.jsonl")))["r1"]
        data, duration = row["measured"]["data"], row["measured"]["duration"]
        assert data["cut"] and data["shared_budget"] is True, name
        assert 0.75 * 65536 <= data["bytes_sent"] + data["bytes_received"] <= 1.1 * 65536 + 8192, name
        assert duration["cut"] and 3.5 <= duration["age_s"] <= 6.0, name
        assert row["limits"]["duration_unit_suspect"] is unit_suspect


def test_the_millisecond_duration_is_certain_once_measured():
    measured = diagnose(load(TRACES / "js-short-measured.jsonl"))
    unit = next(f for f in measured.findings if f.code == "relay-limit-unit")
    assert unit.confidence.value == "certain" and any("measured" in e for e in unit.evidence)
    announced = diagnose(load(TRACES / "js-default.jsonl"))
    assert next(f for f in announced.findings if f.code == "relay-limit-unit").confidence.value == "likely"


def test_slots_full_says_when_the_relay_refused():
    row = _relays(diagnose(load(TRACES / "js-slots-full.jsonl")))["r1"]
    assert row["slots"] == {"asked": 3, "granted": 1, "refused_at": 2, "status": "RESERVATION_REFUSED",
                            "error": "STATUS RESERVATION_REFUSED", "freed_slot_reused": False}


def test_bad_lines_of_the_relay_list_are_reported_with_their_line_numbers():
    verdict = diagnose(load(TRACES / "from-file.jsonl"))
    rejected = next(f for f in verdict.findings if f.code == "relay-entry-rejected")
    assert rejected.severity is Severity.ERROR
    assert [e.split(":")[1] for e in rejected.evidence] == ["3", "4"]
    assert [r["line"] for r in verdict.facts["rejected_entries"]] == [3, 4, 6]
    assert verdict.facts["rejected_entries"][2]["duplicate_of"] == "r1"


def test_exit_codes_follow_the_outcome():
    assert diagnose(load(TRACES / "py-default.jsonl")).exit_code is ExitCode.OK
    assert diagnose(load(TRACES / "js-default.jsonl")).exit_code is ExitCode.OK  # warnings do not fail a relay
    assert diagnose(load(TRACES / "bad-relays.jsonl")).exit_code is ExitCode.RELAY_PROBLEM


def test_findings_point_back_to_their_relay():
    verdict = diagnose(load(TRACES / "bad-relays.jsonl"))
    for row in verdict.facts["relays"]:
        for i in row["findings"]:
            assert verdict.findings[i].evidence[0].startswith(f"{row['label']}: ")


def test_the_json_document_is_plain_json():
    verdict = diagnose(load(TRACES / "bad-relays.jsonl"))
    doc = json.loads(dumps(verdict_document(verdict)))
    assert doc["schema_version"] == 1 and doc["command"] == "relay-check" and doc["exit_code"] == 5


def test_the_terminal_view_shows_a_row_per_relay_and_details_of_the_failed(tmp_path):
    from rich.console import Console

    from p2pdiag.render.relaycheck import render

    console = Console(record=True, width=140)
    render(diagnose(load(TRACES / "bad-relays.jsonl")), console)
    text = console.export_text()
    for label in ("r1", "r7"):
        assert f"\n {label} " in text
    assert text.count(": FAIL") == 7
    assert "more: p2pdiag explain voucher-wrong-peer" in text
    console = Console(record=True, width=140)
    render(diagnose(load(TRACES / "py-default.jsonl")), console)
    assert ": PASS" not in console.export_text()  # no details for relays that passed


def test_the_terminal_view_shows_a_passing_relays_information_and_the_trace_notes():
    """A relay that sends no voucher passes with an information finding (voucher-missing): the view shows
    it instead of hiding the relay. No recorded relay omits vouchers, so this is py-default's trace with the
    vouchers taken out of its reservation replies, and its last line cut short as a killed run leaves it."""
    from rich.console import Console

    from p2pdiag.diagnosis.codes import Code
    from p2pdiag.diagnosis.facts import RelayVerdict
    from p2pdiag.render.relaycheck import render

    lines = (TRACES / "py-default.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines[1:]]
    for e in events:
        if e["type"] == "reservation.accepted":
            e.update(voucher_hex="", voucher_bytes=0)
    text = "\n".join([lines[0], *(json.dumps(e) for e in events)]) + "\n" + json.dumps(events[-1])[:20]
    verdict = diagnose(loads(text))
    rows = {r.label: r for r in verdict.details.relays}
    assert rows["r1"].verdict is RelayVerdict.PASS and Code.VOUCHER_MISSING in rows["r1"].finding_codes
    console = Console(record=True, width=140)
    render(verdict, console)
    shown = console.export_text()
    assert ": PASS" in shown and "more: p2pdiag explain voucher-missing" in shown
    assert "Note: the trace's last line was cut short" in shown
