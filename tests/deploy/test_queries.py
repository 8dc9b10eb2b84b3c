"""Every expression of the dashboard and the rules names a metric that a live /metrics
scrape of the real server exposes (or a recording rule defined next to them)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from deploy import queries
from tests.deploy.conftest import predict


def exposed(running) -> set[str]:
    url = f"http://127.0.0.1:{running.app.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_dashboard_and_rule_expression_names_an_exposed_metric(gate_server,
                                                                     fixture_mnist):
    predict(gate_server, fixture_mnist.x_test[:200])  # fills the drift window
    names = exposed(gate_server) | {"up"}  # Prometheus adds `up` to every target
    recorded = {r["record"] for r in queries.rules() if "record" in r}
    expressions = [(t["panel"], t["expr"]) for t in queries.dashboard_targets()]
    expressions += [(r.get("record") or r["alert"], r["expr"]) for r in queries.rules()]
    assert len(expressions) > 25
    for where, expr in expressions:
        used = queries.metric_names(expr)
        assert used, f"{where}: names no metric: {expr}"
        unknown = used - names - recorded
        assert not unknown, f"{where}: {sorted(unknown)} not exposed by the server"


def test_the_check_catches_a_misspelt_metric():
    assert queries.metric_names('rate(highway_request_seconds_bucket{code="OK"}[5m])') == {
        "highway_request_seconds_bucket"}
    assert queries.metric_names('x{layer="highway_conv1"}') == set()  # label values are not
