"""Bad input: one line on stderr saying what is wrong, exit code 2, never a traceback."""

import json
import os
import subprocess
import sys

import pytest

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWRngDiRy3hr5rezx8F2swVFYN42QMEdk2LN3C1wxX1KJV"
RELAY = f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}"


def p2pdiag(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


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


TARGET = f"{RELAY}/p2p-circuit/p2p/{PEER_ID}"
# each command with the least it needs, and the options it takes in seconds (True: zero is allowed)
SECONDS_OPTIONS = {
    ("dial", TARGET): {"--timeout": False, "--hold": True, "--ping-interval": False, "--ice-timeout": False,
                       "--stun-timeout": False},
    ("listen", "--relay", RELAY): {"--timeout": False, "--ice-timeout": False, "--stun-timeout": False},
    ("demo",): {"--timeout": False, "--hold": True},
    ("relay-check", RELAY): {"--timeout": False, "--measure-max": False},
    ("nat", "--stun", "stun:127.0.0.1:3478"): {"--test-timeout": False},
}


def _one_line_exit_2(result: subprocess.CompletedProcess, *wanted: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pdiag: error: "), result.stderr
    for text in wanted:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize(("base", "option", "value"), [
    (base, option, value)
    for base, options in SECONDS_OPTIONS.items()
    for option, zero_ok in options.items()
    for value in ("nan", "inf", "-inf", "-1", *(() if zero_ok else ("0",)))
])
def test_every_seconds_option_refuses_what_is_not_a_duration(base, option, value):
    """nan, infinities and negatives (zero where it means nothing) are refused before anything runs."""
    _one_line_exit_2(p2pdiag(*base, option, value), option, "seconds")


def test_hold_nan_is_refused_with_a_timeout_too():
    _one_line_exit_2(p2pdiag("dial", TARGET, "--timeout", "5", "--hold", "nan"), "--hold")


@pytest.mark.parametrize("command", [("dial", TARGET), ("listen", "--relay", RELAY)])
@pytest.mark.parametrize(("args", "message"), [
    (["--stun", "stun:"], "--stun stun:"),
    (["--stun", "stun:host:notaport"], "--stun stun:host:notaport"),
    (["--turn", "turn:", "--turn-user", "u", "--turn-credential", "c"], "--turn turn:"),
    (["--turn", "turn:h:3478?transport=sctp", "--turn-user", "u", "--turn-credential", "c"], "transport"),
    (["--ice-address", "notanip"], "'notanip' is not an IP address"),
    (["--turn-user", "u"], "give --turn"),
    (["--turn-credential", "c"], "give --turn"),
])
def test_ice_settings_are_checked_at_the_door(command, args, message):
    _one_line_exit_2(p2pdiag(*command, *args), message)


@pytest.mark.parametrize("target", ["/dev/full", "/proc/version", "/nonexistent/dir/t.jsonl"])
def test_a_trace_that_cannot_be_written_is_refused_at_the_door(target):
    _one_line_exit_2(p2pdiag("dial", TARGET, "--trace", target), f"--trace {target}: cannot write")


def test_a_trace_fifo_without_reader_is_refused_not_waited_for(tmp_path):
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    _one_line_exit_2(p2pdiag("dial", TARGET, "--trace", str(fifo), timeout=20), "--trace")


def _unreadable_inputs(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(5 * 1024 * 1024)
    return {"fifo": (fifo, "FIFO"), "zero": ("/dev/zero", "a device"), "big": (big, "more than")}


@pytest.mark.parametrize("kind", ["fifo", "zero", "big"])
def test_relay_list_files_are_read_bounded(tmp_path, kind):
    path, message = _unreadable_inputs(tmp_path)[kind]
    _one_line_exit_2(p2pdiag("relay-check", "--from-file", str(path), timeout=20), "--from-file", message)


@pytest.mark.parametrize("kind", ["fifo", "zero", "big"])
def test_identity_files_are_read_bounded(tmp_path, kind):
    path, message = _unreadable_inputs(tmp_path)[kind]
    _one_line_exit_2(p2pdiag("listen", "--relay", RELAY, "--identity", str(path), timeout=20), "--identity", message)


def test_a_trace_write_that_fails_later_stops_the_trace_not_the_run(tmp_path):
    """A full disk mid-run (here: a file size limit just above the header): one warning line, the
    verdict still shown, the trace kept up to there."""
    import resource
    import signal
    import socket

    with socket.socket() as s:  # a port nothing listens on: the dial fails fast, with events to write
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    trace = tmp_path / "t.jsonl"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit is EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (1200, 1200))

    target = f"/ip4/127.0.0.1/tcp/{port}/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}"
    result = subprocess.run([sys.executable, "-m", "p2pdiag", "dial", target, "--trace", str(trace), "--json"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                            preexec_fn=limit, check=False)
    assert result.returncode == 4, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cannot write" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"p2pdiag: warning: --trace {trace}: "), result.stderr
    assert json.loads(result.stdout)["outcome"] == "unreachable"
    assert 0 < trace.stat().st_size <= 1200
    assert p2pdiag("analyze", str(trace)).returncode == 4  # what was written is a trace


COMMANDS = [[], ["dial"], ["listen"], ["analyze"], ["report"], ["demo"], ["relay-check"], ["nat"], ["explain"],
            ["watch"], ["lab"], ["lab", "up"], ["lab", "down"], ["lab", "status"], ["lab", "run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "p2pdiag")
def test_help_names_every_value_in_words(command):
    """Every option and argument has a metavar a person reads: no <str>, <float>, {target}."""
    result = p2pdiag(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: p2pdiag")
    for bad in ("<str>", "<float>", "<int>", "<path>", "<list[", "<bool>", "{"):
        assert bad not in result.stdout, (bad, result.stdout)
    for line in result.stdout.splitlines():  # every option that takes a value names it in capitals
        stripped = line.strip()
        if line.startswith("  --") and not stripped.startswith(("--json", "--help", "--version")):
            flag, _, rest = stripped.partition(" ")
            # a value follows its flag after one space; help after two or more (a flag without a value)
            value = "" if rest.startswith(" ") else rest.split("  ")[0].strip()
            if value:
                assert value == value.upper(), (flag, value)


def test_every_command_is_in_the_help_test():
    listed = {c[0] for c in COMMANDS if c}
    result = p2pdiag("--help")
    commands = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert set(commands) <= listed, set(commands) - listed
