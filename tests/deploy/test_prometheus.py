"""A real Prometheus scrapes a real server under known traffic: its answers for the p99
latency and the drift score match what the test sent, every dashboard query evaluates
to data, and every rule loads and is healthy; the drift alert goes pending."""

from __future__ import annotations

import math
import time
import urllib.request

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy import queries
from deploy.prometheus_run import Prometheus
from highway_core import drift
from protos.highway.v1 import classifier_pb2 as hw
from tests.deploy.conftest import WINDOW, predict

SENT = WINDOW  # single-image Predict calls
P99 = ('histogram_quantile(0.99, sum by (le) '
       '(highway_request_duration_seconds_bucket{method="Predict",code="OK"}))')


def quantile_from_buckets(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile on cumulative (upper bound, count) pairs."""
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    for i, (upper, count) in enumerate(buckets):
        if count >= rank:
            if math.isinf(upper):
                return buckets[i - 1][0]
            lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
            return lower + (upper - lower) * (rank - below) / (count - below)
    raise AssertionError("unreachable")


def scraped_buckets(running) -> list[tuple[float, float]]:
    url = f"http://127.0.0.1:{running.app.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return [(float(s.labels["le"]), s.value) for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == "highway_request_duration_seconds_bucket"
            and s.labels["method"] == "Predict" and s.labels["code"] == "OK"]


@pytest.fixture(scope="module")
def prometheus(prometheus_binary, gate_server):
    with Prometheus([f"127.0.0.1:{gate_server.app.metrics_port}"], interval_s=1.0) as prom:
        yield prom


@pytest.fixture(scope="module")
def traffic(prometheus, gate_server, fixture_mnist):
    """SENT single-image Predict calls (client-timed) and one refused request."""
    latencies, gates = [], []
    for image in fixture_mnist.x_test[:SENT]:
        start = time.perf_counter()
        gates.append(predict(gate_server, image[None])[0])
        latencies.append(time.perf_counter() - start)
    with pytest.raises(grpc.RpcError):
        gate_server.classifier.Predict(hw.PredictRequest(images=[b"short"]))
    prometheus.wait_for('sum(highway_requests_total{method="Predict"})',
                        lambda v: v == SENT + 1)
    return np.array(latencies), np.array(gates)


def test_p99_from_prometheus_matches_the_sent_calls(prometheus, gate_server, traffic):
    latencies, _ = traffic
    assert prometheus.value(
        'sum(highway_requests_total{method="Predict",code="OK"})') == SENT
    assert prometheus.value(
        'sum(highway_requests_total{method="Predict",code="INVALID_ARGUMENT"})') == 1
    p99 = prometheus.value(P99)
    # The same histogram, read straight from the server, gives the same quantile ...
    assert p99 == pytest.approx(quantile_from_buckets(0.99, scraped_buckets(gate_server)))
    # ... and it cannot be above the bucket that holds the slowest call the client saw.
    bound = min(b for b, _ in scraped_buckets(gate_server) if b >= latencies.max())
    assert 0 < p99 <= bound


def test_drift_score_in_prometheus_is_the_psi_of_the_images_sent(
        prometheus, gate_server, traffic, tiny_repository, fixture_mnist):
    _, gates = traffic
    reference = drift.read(tiny_repository / "highway_mnist" / "1" / drift.FILENAME)
    score = 'highway_gate_drift_score{model="highway_mnist",version="1"}'
    expected = drift.overall(reference.scores(gates))
    assert prometheus.wait_for(score, lambda v: v == pytest.approx(expected, rel=1e-5))

    inverted = predict(gate_server, 255 - fixture_mnist.x_test[:WINDOW])
    shifted = drift.overall(reference.scores(inverted))
    assert shifted > 0.1 and shifted > expected
    prometheus.wait_for(score, lambda v: v == pytest.approx(shifted, rel=1e-5))
    prometheus.wait_for('count(ALERTS{alertname="HighwayGateDrift",alertstate="pending"})',
                        lambda v: v == 1)


def test_every_dashboard_query_returns_data(prometheus, traffic):
    for target in queries.dashboard_targets():
        expr = queries.substitute(target["expr"], rate="1m")
        assert prometheus.query(expr), f"{target['panel']}: no data for {expr}"


def test_every_rule_loads_and_evaluates_without_error(prometheus, traffic):
    time.sleep(2)  # at least one evaluation after the traffic
    loaded = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert len(loaded) == len(queries.rules())
    assert all(r["health"] == "ok" for r in loaded), [r for r in loaded if r["health"] != "ok"]
