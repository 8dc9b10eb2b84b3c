"""Gate metrics on a real server: the histogram counts exactly the gate values served,
drift is the PSI of exactly the last window, and a broken reference fails the load."""

from __future__ import annotations

import json
import shutil
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from highway_core import drift
from protos.highway.v1 import classifier_pb2 as hw
from server.errors import ModelLoadError
from server.gates import GATE_BUCKETS

WINDOW = 50


def scrape(running) -> dict:
    url = f"http://127.0.0.1:{running.app.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def predict(running, images: np.ndarray) -> np.ndarray:
    response = running.classifier.Predict(hw.PredictRequest(
        images=[im.tobytes() for im in images], return_gate_activity=True))
    return np.array([list(p.gate_activity) for p in response.predictions], dtype=np.float32)


@pytest.fixture
def gate_server(start_server):
    return start_server(drift_window=WINDOW, drift_interval_s=0.0, drift_threshold=0.1)


def test_histogram_counts_every_served_gate_value_per_layer(gate_server, fixture_mnist):
    gates = np.concatenate([predict(gate_server, fixture_mnist.x_test[i:i + n])
                            for i, n in ((0, 1), (1, 7), (8, 30))])
    layers = gate_server.app.served.get("highway_mnist", 0).highway_layers
    got = scrape(gate_server)
    for i, layer in enumerate(layers):
        labels = {"model": "highway_mnist", "version": "1", "layer": layer}
        for edge in (*GATE_BUCKETS, float("inf")):
            le = "+Inf" if edge == float("inf") else repr(edge)
            key = ("highway_gate_activity_bucket", tuple(sorted({**labels, "le": le}.items())))
            assert got[key] == np.sum(gates[:, i] <= edge), (layer, le)
        count = got[("highway_gate_activity_count", tuple(sorted(labels.items())))]
        total = got[("highway_gate_activity_sum", tuple(sorted(labels.items())))]
        assert count == len(gates)
        assert total == pytest.approx(float(gates[:, i].sum()), rel=1e-5)


def test_drift_is_the_psi_of_the_last_window_and_rises_on_inverted_images(
        gate_server, fixture_mnist, tiny_repository):
    reference = drift.read(tiny_repository / "highway_mnist" / "1" / drift.FILENAME)
    labels = (("model", "highway_mnist"), ("version", "1"))
    predict(gate_server, fixture_mnist.x_test[:WINDOW - 1])
    got = scrape(gate_server)
    assert got[("highway_gate_drift_window_images", labels)] == WINDOW - 1
    assert ("highway_gate_drift_score", labels) not in got  # no score from a partial window
    assert got[("highway_gate_drift_threshold", labels)] == 0.1

    sent = predict(gate_server, fixture_mnist.x_test[100:100 + 2 * WINDOW])[-WINDOW:]
    expected = reference.scores(sent)
    got = scrape(gate_server)
    assert got[("highway_gate_drift_score", labels)] == pytest.approx(drift.overall(expected))
    for layer, value in zip(reference.names, expected, strict=True):
        key = ("highway_gate_drift", tuple(sorted((*labels, ("layer", layer)))))
        assert got[key] == pytest.approx(value)

    inverted = predict(gate_server, 255 - fixture_mnist.x_test[:WINDOW])
    score = scrape(gate_server)[("highway_gate_drift_score", labels)]
    assert score == pytest.approx(drift.overall(reference.scores(inverted)))
    assert score > max(0.1, drift.overall(expected))


def test_gate_metrics_off_exports_none(start_server, fixture_mnist):
    running = start_server(gate_metrics=0)
    predict(running, fixture_mnist.x_test[:3])
    assert not [k for k in scrape(running) if k[0].startswith("highway_gate")]


def test_a_broken_reference_fails_the_load_with_one_line(tiny_repository, tmp_path):
    from server import model_config, repository

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repository, repo)
    model_dir = repo / "highway_mnist"
    config = model_config.read(model_dir)

    def load():
        return repository.load_version(model_dir, config, 1, "cpu", 1)

    path = model_dir / "1" / drift.FILENAME
    raw = json.loads(path.read_text())
    raw["layers"] = raw["layers"][:1]
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match="differ from the model's"):
        load()
    path.write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a gate reference"):
        load()
    path.unlink()  # no reference: served, without drift
    assert load().gate_reference is None
