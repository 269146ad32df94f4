"""The event package: every type registered whatever is imported first, each type name once, and
the shared bases (connection, WebRTC, candidate pair) on exactly the events they describe."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import p2pdiag.trace.events as ev
from p2pdiag.trace.events import relaycheck as rc
from p2pdiag.trace.events.base import register

EVENTS_DIR = Path(ev.__file__).parent


def _registered_in_source() -> list[str]:
    """Every `@register("kind")` written in the package's modules, duplicates kept."""
    kinds = []
    for path in sorted(EVENTS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                kinds += [d.args[0].value for d in node.decorator_list
                          if isinstance(d, ast.Call) and ast.unparse(d.func) == "register"]
    return kinds


@pytest.mark.parametrize("first_import", ["p2pdiag.trace.events", "p2pdiag.trace.events.relaycheck",
                                          "p2pdiag.trace.events.codec"])
def test_a_fresh_interpreter_knows_every_event_type_after_one_import(first_import):
    kinds = _registered_in_source()
    code = (f"import importlib, json, sys\nimportlib.import_module({first_import!r})\n"
            "from p2pdiag.trace.events import EventDecodeError, event_from_dict\n"
            "unknown = []\n"
            "for kind in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        if event_from_dict({'type': kind}) is None:\n"
            "            unknown.append(kind)\n"
            "    except EventDecodeError:\n"
            "        pass  # known: it wants its fields\n"
            "print(json.dumps({'unknown': unknown, 'loaded': sorted(m for m in sys.modules "
            "if m.startswith('p2pdiag.'))}))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(kinds)], capture_output=True, text=True,
                          timeout=60, check=True)
    result = json.loads(done.stdout)
    assert len(kinds) >= 60
    assert result["unknown"] == [], f"after importing only {first_import}, unknown: {result['unknown']}"
    assert "p2pdiag.trace.file" not in result["loaded"]


def test_each_type_name_is_registered_once():
    kinds = _registered_in_source()
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    assert not repeated, f"registered more than once: {repeated}"
    assert sorted(kinds) == sorted(ev.EVENT_TYPES)
    assert all(cls.kind == kind for kind, cls in ev.EVENT_TYPES.items())
    with pytest.raises(ValueError, match="registered twice"):
        register("ping.completed")(ev.PingServed)
    assert ev.EVENT_TYPES["ping.completed"] is ev.PingCompleted and ev.PingServed.kind == "ping.served"


def test_connection_events_and_only_they_carry_a_connection_id():
    for kind, cls in ev.EVENT_TYPES.items():
        names = [f.name for f in dataclasses.fields(cls)]
        assert ("connection_id" in names) == issubclass(cls, ev.ConnectionEvent), kind
        if issubclass(cls, ev.ConnectionEvent):
            assert names[:2] == ["t_s", "connection_id"], kind  # its place in the trace file's line
        assert kind.startswith("webrtc.") == issubclass(cls, ev.WebRTCEvent), kind
    assert issubclass(rc.TransferFailed, ev.ConnectionEvent) and issubclass(ev.HoldStarted, ev.ConnectionEvent)


def test_the_candidate_pair_events_share_their_pair_fields():
    pair = [f.name for f in dataclasses.fields(ev.CandidatePairEvent)]
    assert pair == ["t_s", "connection_id", "local_address", "local_port", "local_type", "remote_address",
                    "remote_port", "remote_type", "protocol"]
    sharing = sorted(k for k, cls in ev.EVENT_TYPES.items() if issubclass(cls, ev.CandidatePairEvent))
    assert sharing == ["webrtc.pair_final", "webrtc.pair_selected", "webrtc.pair_state_changed"]
    for kind in sharing:
        own = [f.name for f in dataclasses.fields(ev.EVENT_TYPES[kind])]
        assert own[:len(pair)] == pair, kind


def test_every_number_field_is_seconds():
    # the loader bounds float fields as seconds (codec.SECONDS_MAX); a float of another unit needs its own bound
    for kind, cls in ev.EVENT_TYPES.items():
        for name, hint in typing.get_type_hints(cls).items():
            if float in (hint, *typing.get_args(hint)):
                assert name.endswith("_s"), f"{kind}.{name} is a float that is not seconds"


def test_the_package_re_exports_what_events_py_exported():
    # the names other modules import as `from p2pdiag.trace.events import X`
    for name in ("Event", "EVENT_TYPES", "EventDecodeError", "event_from_dict", "event_to_dict", "ErrorKind",
                 "Subject", "Path", "Closer", "DialMethod", "InterruptReason", "TargetResolved", "RelayConnected",
                 "HopStatusReceived", "ReservationAccepted", "CircuitClosed", "PingCompleted", "StepTimedOut",
                 "RunFinished", "UpgradeRole", "IcePolicy", "CandidatePairFinal", "WebRTCUpgradeStarted",
                 "NatTestCompleted", "E"):
        assert hasattr(ev, name), name
    assert set(ev.__all__) <= set(dir(ev))
