"""A real Prometheus server, started on loopback against given targets (tests, dashboard plot).

The binary is ``prometheus`` on PATH, or ``$PROMETHEUS`` (Debian's package holds it:
``apt-get download prometheus && dpkg -x prometheus_*.deb DIR``). It loads
``deploy/prometheus/alerts.yml``, so the rules are evaluated as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
RULES = DEPLOY / "prometheus" / "alerts.yml"
JOB = "highway"


def binary(name: str = "prometheus") -> str | None:
    """Path of ``prometheus`` or ``promtool``: $PROMETHEUS/$PROMTOOL, then PATH."""
    return os.environ.get(name.upper()) or shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """``with Prometheus([\"127.0.0.1:8002\"]) as prom: prom.query(...)``."""

    def __init__(self, targets: list[str], interval_s: float = 1.0, rules: Path | None = RULES):
        exe = binary()
        if exe is None:
            raise FileNotFoundError("prometheus is not installed (set $PROMETHEUS or PATH)")
        self._dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        config = {
            "global": {"scrape_interval": f"{round(interval_s * 1000)}ms",
                       "evaluation_interval": f"{round(interval_s * 1000)}ms"},
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }
        if rules is not None:
            config["rule_files"] = [str(rules)]
        (self._dir / "prometheus.yml").write_text(json.dumps(config))  # JSON is valid YAML
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (self._dir / "prometheus.log").open("w")
        self._proc = subprocess.Popen(
            [exe, f"--config.file={self._dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self._dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Prometheus:
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, timeout: float = 60) -> Prometheus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {timeout} s: {self.log()[-2000:]}")

    def log(self) -> str:
        self._log.flush()
        return (self._dir / "prometheus.log").read_text(errors="replace")

    def api(self, path: str, **params) -> dict:
        """GET /api/v1/<path>; returns ``data``, raises ValueError on an API error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
        if body.get("status") != "success":
            raise ValueError(f"{params.get('query', path)}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query: the result vector."""
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        """The single value of an instant query (None when it has no series)."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{expr}: {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, predicate, timeout: float = 30) -> float | None:
        """Polls ``expr`` until ``predicate(value)``; returns the last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(expr)
            if value is not None and predicate(value):
                return value
            time.sleep(0.2)
        raise TimeoutError(f"{expr} = {value} after {timeout} s")

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)
