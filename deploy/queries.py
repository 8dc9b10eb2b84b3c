"""Every PromQL expression of the dashboard and the rules, and the metrics they name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
DASHBOARD = DEPLOY / "grafana" / "highway.json"
RULES = DEPLOY / "prometheus" / "alerts.yml"
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def dashboard_targets(path: Path = DASHBOARD) -> list[dict]:
    """[{panel, expr, legend, format}] for every query of every panel."""
    dashboard = json.loads(path.read_text())
    return [{"panel": p["title"], "expr": t["expr"], "legend": t.get("legendFormat", ""),
             "format": t.get("format", "time_series"), "type": p["type"]}
            for p in dashboard["panels"] for t in p.get("targets", [])]


def rules(path: Path = RULES) -> list[dict]:
    """Every rule (recording and alerting) as written."""
    return [rule for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def substitute(expr: str, rate: str = "30s", instance: str = ".*", layer: str = ".*") -> str:
    """A dashboard expression with Grafana's variables filled in, as Grafana would send it."""
    return (expr.replace("$__rate_interval", rate).replace("$instance", instance)
            .replace("$layer", layer))


def metric_names(expr: str) -> set[str]:
    """Metric and recording-rule names an expression reads (ours: ``highway…``, and ``up``)."""
    bare = _QUOTED.sub('""', expr)
    return {n for n in _NAME.findall(bare) if n.startswith("highway") or n == "up"}
