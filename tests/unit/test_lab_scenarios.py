"""Lab scenario files and the `p2pdiag lab` command, without root: loading, validation, judging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from p2pdiag.diagnosis import diagnose
from p2pdiag.errors import UsageError
from p2pdiag.lab import Router
from p2pdiag.lab.netns import ruleset
from p2pdiag.lab.scenario import (
    Expectation,
    ScenarioError,
    builtin_scenarios,
    cut_text,
    fallback_state,
    find_scenario,
    judge,
    load_scenario,
)
from p2pdiag.render.json import dumps, verdict_document
from p2pdiag.trace.file import loads

TRACES = Path(__file__).resolve().parent.parent / "traces" / "relay"

GOOD = """
description = "ticket 1234"
[lab.a]
nat = "symmetric"
[lab.b]
nat = "cone"
udp = "blocked"
[relay]
implementation = "js"
duration_s = 5
[ice]
turn = true
policy = "relay"
[dial]
hold_s = 3
[expect]
outcome = "relayed_only"
findings = ["webrtc-ice-failed"]
fallback = "held"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_every_builtin_scenario_loads(path):
    sc = load_scenario(path)
    assert sc.name == path.stem and sc.description and sc.expect.outcome


def test_a_scenario_file_becomes_values(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.topology.a == Router(nat="symmetric") and sc.topology.b == Router(nat="cone", udp="blocked")
    assert (sc.relay.implementation, sc.relay.duration_s, sc.relay.data_bytes) == ("js", 5.0, None)
    assert sc.ice.turn and sc.ice.stun and sc.ice.policy == "relay"
    assert sc.dial.hold_s == 3.0 and sc.listener == "p2pdiag"
    assert sc.expect == Expectation("relayed_only", ("webrtc-ice-failed",), (), "held", ())


def test_a_scenario_can_make_coturn_deny_peer_ranges(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD.replace("[lab.a]", "[lab]\nturn_denied_peers = [\"203.0.113.0/24\"]\n"
                                                               "[lab.a]", 1)))
    assert sc.topology.turn_denied_peers == ("203.0.113.0/24",)
    assert sc.topology.a == Router(nat="symmetric")
    assert load_scenario(write(tmp_path, GOOD)).topology.turn_denied_peers == ()


def test_json_scenarios_too(tmp_path):
    sc = load_scenario(write(tmp_path, json.dumps({"expect": {"outcome": "upgraded"}}), "t.json"))
    assert sc.name == "t" and sc.relay.implementation == "py"


@pytest.mark.parametrize(("change", "field"), [
    (("[relay]\nimplementation = \"js\"", "[relay]\nimplementation = \"go\""), "relay.implementation"),
    (("duration_s = 5", "duration_s = \"5\""), "relay.duration_s"),
    (("duration_s = 5", "duration_s = -5"), "relay.duration_s"),
    (("hold_s = 3", "hold = 3"), "dial.hold"),
    (("nat = \"symmetric\"", "nat = \"sym\""), "lab.a"),
    (("outcome = \"relayed_only\"", "outcome = \"direct\""), "expect.outcome"),
    (("outcome = \"relayed_only\"", ""), "expect.outcome"),
    (("fallback = \"held\"", "fallback = \"alive\""), "expect.fallback"),
    (("findings = [\"webrtc-ice-failed\"]", "findings = \"webrtc-ice-failed\""), "expect.findings"),
    (("turn = true", "turn = \"yes\""), "ice.turn"),
    (("turn = true", "turn = false"), "ice.policy"),
    (("turn = true", "turn = true\nstun = false\nnat_probe = true"), "ice.nat_probe"),
    (("description", "descripton"), "descripton"),
    (("[lab.a]", "[lab]\nturn_denied_peers = [\"203.0.113.0/33\"]\n[lab.a]"), "lab.turn_denied_peers"),
    (("[lab.a]", "[lab]\nturn_denied_peers = \"203.0.113.0/24\"\n[lab.a]"), "lab.turn_denied_peers"),
])
def test_a_bad_file_is_one_line_naming_the_field(tmp_path, change, field):
    old, new = change
    assert old in GOOD
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, GOOD.replace(old, new, 1)))
    message = str(err.value)
    assert "\n" not in message and f": {field}" in message and "s.toml" in message


def test_not_toml_and_missing_files(tmp_path):
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "[lab\n"))
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "none.toml")
    with pytest.raises(ScenarioError, match="cone-cone-stun"):
        find_scenario("no-such-scenario")


def recorded(name: str, text: str | None = None):
    """A recorded dial trace as the lab reads it: the --json document, the typed verdict, the raw events."""
    text = text if text is not None else (TRACES / f"{name}.jsonl").read_text()
    verdict = diagnose(loads(text, name))
    return json.loads(dumps(verdict_document(verdict))), verdict, [json.loads(line) for line in text.splitlines()[1:]]


def test_judge_checks_outcome_codes_fallback_and_candidates():
    doc, verdict, events = recorded("dial-py-relay-ok")
    good = judge(Expectation("relayed_only", ("peer-no-webrtc-signaling",), ("relay-cut-data",), "held"), doc,
                 verdict, events)
    assert all(c.ok for c in good) and len(good) == 4
    bad = judge(Expectation("upgraded", ("relay-cut-data",), ("relay-limited",), "cut", ("srflx",)), doc, verdict,
                events)
    assert [c.ok for c in bad] == [False] * 5


def test_the_fallback_is_read_from_the_verdict_not_judged_here():
    assert fallback_state(recorded("dial-py-relay-ok")[1]) == "held"
    cut = recorded("dial-py-data-cut")[1]
    assert fallback_state(cut) == "cut"
    assert cut_text(cut).startswith(" at ") and "(data limit 12000), during hold" in cut_text(cut)
    refused = recorded("dial-relay-refused")[1]
    assert fallback_state(refused) == "none" and cut_text(refused) == ""
    # lost: the relayed connection stayed open but its last ping failed (dial-py-relay-ok's last ping, made to fail)
    lines = (TRACES / "dial-py-relay-ok.jsonl").read_text().splitlines()
    last = max(n for n, line in enumerate(lines) if '"type":"ping.completed"' in line)
    ping = json.loads(lines[last])
    lines[last] = json.dumps({"type": "ping.failed", "t_s": ping["t_s"], "path": "relayed",
                              "connection_id": ping["connection_id"], "error_kind": "timeout", "error": "no answer"})
    assert fallback_state(recorded("lost", "\n".join(lines) + "\n")[1]) == "lost"


def test_nat_routers_drop_unsolicited_udp_to_themselves_silently():
    """A refused packet would leave a conntrack entry that makes masquerade move the next mapping's port."""
    rules = ruleset(Router(nat="cone"), host_ip="198.18.1.10", stun_port=3478)
    assert "hook input" in rules and 'iifname "wan0" meta l4proto udp ct state new drop' in rules
    assert "hook input" not in ruleset(Router(nat="none"), host_ip="198.18.1.10", stun_port=3478)


def test_lab_commands_need_root_in_one_line(monkeypatch):
    from p2pdiag.cli import lab as lab_cli

    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command, so that `lab` is a group of the app
        pass

    app.add_typer(lab_cli.lab_app, name="lab")
    monkeypatch.setattr(lab_cli.os, "geteuid", lambda: 1000)
    for argv in (["lab", "up"], ["lab", "down"], ["lab", "status"], ["lab", "run", "cone-cone-stun"]):
        result = CliRunner().invoke(app, argv)
        assert isinstance(result.exception, UsageError), (argv, result.output)
        assert "needs root" in str(result.exception) and "\n" not in str(result.exception)
