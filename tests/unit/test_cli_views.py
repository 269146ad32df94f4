"""What `nat` and `lab` show, now in render/: the same fields and wording as before, one schema_version."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import time

from p2pdiag.diagnosis.nat import NO_UDP, nat_behaviour
from p2pdiag.exitcodes import ExitCode
from p2pdiag.render import json as render_json
from p2pdiag.render import lab as lab_view
from p2pdiag.render import nat as nat_view
from p2pdiag.wire.stun import NatTest

PRIMARY = ("203.0.113.3", 3478)
OTHER = ("203.0.113.4", 3479)
LOCAL = ("198.18.1.10", 40000)
PUB = ("203.0.113.1", 51000)


def _cone() -> list[NatTest]:
    return [NatTest("mapping-1", PRIMARY, 0, LOCAL, True, PUB, PRIMARY, OTHER, 0.001),
            NatTest("mapping-2", ("203.0.113.4", 3478), 0, LOCAL, True, PUB, ("203.0.113.4", 3478), OTHER, 0.001)]


def test_nat_text_keeps_its_wording():
    out = io.StringIO()
    nat_view.render(nat_behaviour(_cone()), out)
    assert out.getvalue().splitlines() == [
        "Mapping:   endpoint-independent",
        "Filtering: not tested",
        "Public address (test I): 203.0.113.1:51000",
        "  evidence: test I: local port 40000 → 203.0.113.3:3478: mapped 203.0.113.1:51000",
        "  evidence: test II → 203.0.113.4:3478: mapped 203.0.113.1:51000",
        "  to tell more: a STUN server with OTHER-ADDRESS (RFC 5780) for the filtering tests",
    ]


def test_nat_json_keeps_its_fields():
    tests = _cone()
    doc = json.loads(nat_view.dumps(nat_view.document(["stun:203.0.113.3"], nat_behaviour(tests), tests)))
    assert list(doc) == ["schema_version", "command", "stun", "mapping", "filtering", "public", "evidence", "settle",
                         "tests"]
    assert doc["schema_version"] == render_json.SCHEMA_VERSION and doc["command"] == "nat"
    assert doc["public"] == ["203.0.113.1", 51000] and doc["mapping"] == "endpoint-independent"
    assert doc["tests"][0] == {"name": "mapping-1", "server": ["203.0.113.3", 3478], "change": 0,
                               "local": ["198.18.1.10", 40000], "answered": True, "mapped": ["203.0.113.1", 51000],
                               "origin": ["203.0.113.3", 3478], "other": ["203.0.113.4", 3479], "rtt_s": 0.001}


def test_nat_exit_code_is_the_judgements():
    assert nat_behaviour(_cone()).exit_code == ExitCode.OK
    silent = nat_behaviour([NatTest("mapping-1", PRIMARY, 0, LOCAL, False)])
    assert silent.mapping == NO_UDP and silent.exit_code == ExitCode.UNREACHABLE


def test_lab_documents_share_the_schema_version():
    doc = json.loads(lab_view.dumps({"labs": []}))
    assert list(doc) == ["schema_version", "labs"] and doc["schema_version"] == render_json.SCHEMA_VERSION
    out = io.StringIO()
    lab_view.render_status([], out)
    assert out.getvalue() == "no labs\n"


def _silent_udp_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers: every test waits it out
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def test_nat_live_with_no_answer_exits_4_through_the_judgement():
    sock, port = _silent_udp_port()
    with sock:
        result = subprocess.run([sys.executable, "-m", "p2pdiag", "nat", "--stun", f"stun:127.0.0.1:{port}",
                                 "--test-timeout", "0.3"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 4, result.stderr
    assert result.stdout.startswith(f"Mapping:   {NO_UDP}\n")


def test_nat_ctrl_c_is_130_without_a_traceback():
    sock, port = _silent_udp_port()
    with sock:
        proc = subprocess.Popen([sys.executable, "-m", "p2pdiag", "nat", "--stun", f"stun:127.0.0.1:{port}",
                                 "--test-timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)  # in the probe's wait by then, or still starting: 130 either way
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "p2pdiag: error: interrupted"
