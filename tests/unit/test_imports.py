"""Diagnosis and trace code must not import network or UI libraries; --help must stay light.

Each check runs p2pdiag in a fresh interpreter and asserts it exited as it should before it looks
at the modules loaded: a crash loads little, so a check that ignored the exit would pass on one.
"""

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("trio", "libp2p", "aiortc", "aioice", "rich")


def _modules_after(code: str) -> list[str]:
    """The modules loaded once CODE ran; CODE must run to its end (exit 0)."""
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr)"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("MODULES ")]
    return line.split()[1:]


def _loaded_after(code: str) -> set[str]:
    return {m.split(".")[0] for m in _modules_after(code)}


def _main(argv: list[str], exit_code: int) -> str:
    """Code that runs p2pdiag's main with ARGV and checks it exits EXIT_CODE."""
    return (f"from p2pdiag.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as exc:\n"
            f"    assert exc.code == {exit_code}, ('exit', exc.code)\nelse:\n    raise AssertionError('no exit')")


def test_diagnosis_and_trace_import_nothing_heavy():
    loaded = _loaded_after(
        "import p2pdiag.diagnosis, p2pdiag.diagnosis.dial, p2pdiag.diagnosis.listen, "
        "p2pdiag.trace.file, p2pdiag.trace.recorder, p2pdiag.trace.redact, p2pdiag.render.json, p2pdiag.targets"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_help_does_not_import_libp2p_or_aiortc():
    for argv in (["--help"], ["dial", "--help"], ["listen", "--help"], ["nat", "--help"], ["lab", "--help"]):
        loaded = _loaded_after(_main(argv, 0))
        assert "libp2p" not in loaded and "aiortc" not in loaded and "trio" not in loaded, argv


def test_analyze_does_not_import_libp2p(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"type":"p2pdiag.trace","schema_version":1,"p2pdiag_version":"0","command":"dial",'
                     '"options":{},"started_at":"x","libraries":{}}\n')
    for redact in ([], ["--redact"]):
        loaded = _loaded_after(_main(["analyze", str(trace), *redact], 4))  # no event at all: the peer was not reached
        assert "libp2p" not in loaded and "aiortc" not in loaded and "trio" not in loaded


def test_analyze_of_a_js_log_does_not_import_libp2p():
    log = Path(__file__).resolve().parents[1] / "traces" / "jslog" / "dial-no-reservation.log"
    loaded = _loaded_after(_main(["analyze", str(log)], 4))  # the relay had no reservation for the peer
    assert "libp2p" not in loaded and "aiortc" not in loaded and "trio" not in loaded


def test_help_does_not_load_the_trace_schema_or_the_diagnosis():
    """--help answers from the typer app alone: the event classes and the diagnosis load only in a command."""
    modules = _modules_after(_main(["--help"], 0))
    assert "p2pdiag.cli.app" in modules  # the app was built, so the check below means something
    assert not [m for m in modules if m.startswith(("p2pdiag.trace", "p2pdiag.diagnosis", "p2pdiag.probes"))]


def test_a_check_that_crashes_fails():
    """The helper itself: a main that does not exit as expected is an assertion, not an empty module list."""
    with pytest.raises(AssertionError):
        _loaded_after(_main(["--no-such-option"], 0))
