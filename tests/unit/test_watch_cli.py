"""`p2pdiag watch` at the door: every bad input is one line and exit 2, before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

R = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


def p2pdiag(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pdiag", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, check=False)


@pytest.mark.parametrize("args, message", [
    (["watch"], "nothing to watch"),
    (["watch", "missing.toml"], "missing.toml"),
    (["watch", "--relay", "/ip4/1.2.3.4/tcp/1"], "must end with /p2p/"),
    (["watch", "--peer", "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"], "give --relay"),
    (["watch", "--relay", R, "--shard", "3/2"], "--shard '3/2'"),
    (["watch", "--relay", R, "--metrics", "example.org:80"], "must be an IP address"),
    (["watch", "--relay", R, "--interval", "5", "--timeout", "5"], "not below the interval"),
    (["watch", "--relay", R, "--interval", "-1"], "--interval"),
    (["watch", "fleet.toml", "--relay", R], "not both"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    (tmp_path / "fleet.toml").write_text(f'[[relay]]\naddr = "{R}"\n')
    out = p2pdiag(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pdiag: error: "), out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_a_bad_config_names_the_file_table_and_key(tmp_path):
    bad = tmp_path / "fleet.toml"
    bad.write_text(f'[[relay]]\naddr = "{R}"\n\n[[peer]]\nname = "node-b"\nadrs = []\n')
    out = p2pdiag("watch", str(bad))
    assert out.returncode == 2
    assert f"config {bad}: [[peer]] 1 (node-b): adrs: unknown key" in out.stderr
