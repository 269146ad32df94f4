"""Debian's real `prometheus`, started by a test on loopback with a generated config, read back through
its HTTP API (`/api/v1/query`, `/api/v1/targets`, `/api/v1/rules`, `/api/v1/alerts`).

`scripts/setup-system.sh` installs the package and leaves its own service disabled; each test runs
its own server in a temporary directory (config, TSDB) and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import Proc

BINARY = shutil.which("prometheus")
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def watch_url(proc: Proc, timeout: float = 30.0) -> str:
    """Where a `p2pdiag watch --metrics HOST:0` child serves /metrics and /probe ("http://HOST:PORT/"):
    the line it prints on stderr once its server is bound."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(proc.stderr):
            if "/metrics and /probe on " in line:
                return line.split(" on ", 1)[1].strip()
        if proc.popen.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} never served /metrics: {''.join(proc.stderr)[-3000:]}")


def metrics_job(name: str, address: str) -> dict:
    """A job scraping ADDRESS's /metrics."""
    return {"job_name": name, "metrics_path": "/metrics", "static_configs": [{"targets": [address]}]}


def probe_job(name: str, exporter: str, module: str, targets: list[str], scrape_timeout: str = "1s") -> dict:
    """A blackbox-style job: each target becomes `?target=` of EXPORTER's /probe and the `instance` label,
    the relabelling operators use for blackbox_exporter."""
    return {
        "job_name": name,
        "metrics_path": "/probe",
        "scrape_timeout": scrape_timeout,
        "params": {"module": [module]},
        "static_configs": [{"targets": targets}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": exporter},
        ],
    }


class Prometheus:
    """One prometheus server: `start()`, the API helpers, `stop()` (also as a context manager)."""

    def __init__(self, workdir: Path, jobs: list[dict], rule_files: tuple[Path, ...] = (),
                 interval: str = "1s") -> None:
        if BINARY is None:
            raise RuntimeError("prometheus missing: scripts/setup-system.sh installs Debian's prometheus")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": "1s"},
                  "scrape_configs": jobs, "rule_files": [str(p) for p in rule_files]}
        self.config = workdir / "prometheus.yml"
        self.config.write_text(json.dumps(config, indent=1))  # JSON is YAML
        self.proc: Proc | None = None

    def start(self) -> Prometheus:
        self.proc = Proc([BINARY, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"], "prometheus")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                err = "".join(self.proc.stderr)[-3000:]
                raise AssertionError(f"prometheus exited {self.proc.popen.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"prometheus not ready in {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's vector: [{"metric": {labels}, "value": [t, "v"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]

    def value(self, expr: str) -> float | None:
        """The one sample EXPR gives now, or None when it gives none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll CHECK until it returns something truthy (a hang guard, not a speed claim)."""
        deadline = time.monotonic() + timeout
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus: {what} not seen within {timeout} s (last: {got!r})")
            time.sleep(0.25)
