"""Prometheus metrics after known traffic, scraped from the real /metrics endpoint."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import pytest

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from tests.polling import metrics_text, parse, sample


@pytest.fixture
def after_known_traffic(start_server, fixture_mnist):
    running = start_server()
    images = fixture_mnist.x_test
    for n in (1, 2, 5):
        running.classifier.Predict(hw.PredictRequest(images=[im.tobytes() for im in images[:n]]))
    tensor = kserve.ModelInferRequest.InferInputTensor(name="images", datatype="UINT8",
                                                       shape=[4, 28, 28])
    for _ in range(2):
        running.kserve.ModelInfer(kserve.ModelInferRequest(
            model_name="highway_mnist", inputs=[tensor], raw_input_contents=[images[:4].tobytes()]))
    with pytest.raises(grpc.RpcError):
        running.classifier.Predict(hw.PredictRequest(images=[b"short"]))
    with pytest.raises(grpc.RpcError):
        running.kserve.ModelInfer(kserve.ModelInferRequest(model_name="nope"))
    return running, metrics_text(running.app.metrics_port)


def test_counts_match_the_requests_served_exactly(after_known_traffic):
    running, text = after_known_traffic
    got = parse(text)

    def value(name, **labels):
        return sample(got, name, **labels)

    assert value("highway_requests_total", method="Predict", code="OK") == 3
    assert value("highway_requests_total", method="ModelInfer", code="OK") == 2
    assert value("highway_requests_total", method="Predict", code="INVALID_ARGUMENT") == 1
    assert value("highway_requests_total", method="ModelInfer", code="NOT_FOUND") == 1
    assert value("highway_request_duration_seconds_count", method="Predict", code="OK") == 3
    assert value("highway_images_total") == 1 + 2 + 5 + 4 + 4
    assert value("highway_batch_size_sum") == 16  # sequential requests: one run each
    assert value("highway_batch_size_count") == 5
    assert value("highway_inference_duration_seconds_count") == 5
    assert value("highway_queue_duration_seconds_count") == 5
    assert value("highway_inflight_requests") == 0
    assert value("highway_model_info", model="highway_mnist", version="1",
                 provider="CPUExecutionProvider") == 1


def test_histograms_are_in_seconds_with_buckets_from_100us_to_10s(after_known_traffic):
    _, text = after_known_traffic
    buckets = {dict(labels)["le"] for (name, labels) in parse(text)
               if name == "highway_request_duration_seconds_bucket"}
    assert {"0.0001", "10.0", "+Inf"} <= buckets
    for name in ("highway_request_duration_seconds", "highway_queue_duration_seconds",
                 "highway_inference_duration_seconds", "highway_batch_size"):
        assert f"# TYPE {name} histogram" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_exposition_passes_promtool_check_metrics(after_known_traffic):
    _, text = after_known_traffic
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
