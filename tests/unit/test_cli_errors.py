"""Bad input: one line on stderr saying what is wrong, exit code 2, never a traceback."""

import json
import subprocess
import sys

import pytest

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
RELAY = f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}"


def p2pdiag(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dial", "/ip4/1.2.3/tcp/1"], "not a valid multiaddr"),
        (["dial", "notapeer", "--relay", RELAY], "is not a peer id"),
        (["dial", PEER_ID], "needs at least one --relay"),
        (["dial", PEER_ID, "--relay", "/ip4/127.0.0.1/tcp/1"], "must end with /p2p/"),
        (["dial", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", "--timeout", "-1"], "--timeout must be more than zero"),
        (["dial", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", "--timeout", "soon"], "Invalid value for '--timeout'"),
        (["dial", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", "--step-timeout", "hop"], "takes NAME=SECONDS"),
        (["dial", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", "--step-timeout", "warp=1"], "unknown step 'warp'"),
        (["dial", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", "--bogus"], "No such option: --bogus"),
        (["dial", f"{RELAY}/p2p-circuit/p2p/{PEER_ID}", "--trace", "/nonexistent/dir/t.jsonl"], "cannot write"),
        (["listen"], "Missing option '--relay'"),
        (["listen", "--relay", "nope"], "not a multiaddr"),
        (["analyze", "/nonexistent.jsonl"], "no such file"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_input(args, message):
    result = p2pdiag(*args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("p2pdiag: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_trace_file_names_the_line(tmp_path):
    bad = tmp_path / "ticket.jsonl"
    bad.write_text('{"type":"p2pdiag.trace","schema_version":1,"p2pdiag_version":"0","command":"dial",'
                   '"options":{},"started_at":"x","libraries":{}}\n{"type":"ping.completed"}\n')
    result = p2pdiag("analyze", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2: bad event: ping.completed: missing field" in result.stderr


def test_json_mode_stays_valid_on_usage_errors():
    result = p2pdiag("dial", "nope", "--relay", RELAY, "--json")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1 and doc["outcome"] == "error" and doc["exit_code"] == 2
    assert "not a peer id" in doc["headline"]


def test_identity_file_errors(tmp_path):
    junk = tmp_path / "id.key"
    junk.write_text("not a key\n")
    result = p2pdiag("listen", "--relay", RELAY, "--identity", str(junk))
    assert result.returncode == 2
    assert "not a p2pdiag identity file" in result.stderr


def test_version():
    result = p2pdiag("--version")
    assert result.returncode == 0 and result.stdout.startswith("p2pdiag ")
