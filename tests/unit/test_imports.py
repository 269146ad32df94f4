"""Diagnosis and trace code must not import network or UI libraries; --help must stay light."""

import subprocess
import sys

HEAVY = ("trio", "libp2p", "aiortc", "aioice", "rich")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)), file=sys.stderr)"],
        capture_output=True, text=True,
    ).stderr.split()
    return {m.split(".")[0] for m in out}


def test_diagnosis_and_trace_import_nothing_heavy():
    loaded = _loaded_after(
        "import p2pdiag.diagnosis, p2pdiag.diagnosis.dial, p2pdiag.diagnosis.listen, "
        "p2pdiag.trace.file, p2pdiag.trace.recorder, p2pdiag.render.json, p2pdiag.targets"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_help_does_not_import_libp2p_or_aiortc():
    loaded = _loaded_after(
        "import sys\nfrom p2pdiag.cli import main\nsys.argv=['p2pdiag','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "libp2p" not in loaded and "aiortc" not in loaded and "trio" not in loaded


def test_analyze_does_not_import_libp2p(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"type":"p2pdiag.trace","schema_version":1,"p2pdiag_version":"0","command":"dial",'
                     '"options":{},"started_at":"x","libraries":{}}\n')
    loaded = _loaded_after(
        f"import sys\nfrom p2pdiag.cli import main\nsys.argv=['p2pdiag','analyze',{str(trace)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "libp2p" not in loaded and "aiortc" not in loaded and "trio" not in loaded


def test_help_does_not_load_the_trace_schema_or_the_diagnosis():
    """--help answers from the typer app alone: the event classes and the diagnosis load only in a command."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom p2pdiag.cli import main\nsys.argv=['p2pdiag','--help']\n"
         "try:\n    main()\nexcept SystemExit:\n    pass\n"
         "print(' '.join(sorted(sys.modules)), file=sys.stderr)"],
        capture_output=True, text=True,
    ).stderr.split()
    assert not [m for m in out if m.startswith(("p2pdiag.trace", "p2pdiag.diagnosis", "p2pdiag.probes"))]
