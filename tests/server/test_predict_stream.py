"""highway.v1 PredictStream: ordered answers with ids, each a prediction or its own error."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from protos.highway.v1 import classifier_pb2 as hw
from tests.server.helpers import launch
from tests.server.streaming import predict, shipped_settings
from tests.shipped import FP32_VERSION, INT8_VERSION

# A request without a version gets the highest one (Triton's rule): the int8 version.
LATEST = INT8_VERSION


@pytest.fixture(scope="module")
def server():
    running = launch(shipped_settings())
    yield running
    running.close()


def _bad(images: np.ndarray) -> list[hw.PredictRequest]:
    return [
        hw.PredictRequest(id="short", images=[b"\0" * 700]),
        predict(images, id="model", model_name="nope"),
        predict(images, id="version", model_version=-1),
        hw.PredictRequest(id="both", images=[images[0].tobytes()], float_pixels=[0.5] * 784),
        predict(images[:0], id="empty"),
    ]


def test_answers_come_in_order_and_bad_requests_get_the_unary_error(server, fixture_mnist):
    images = fixture_mnist.x_test[:40]
    unary_errors = []
    for request in _bad(images[:1]):
        with pytest.raises(grpc.RpcError) as caught:
            server.classifier.Predict(request, timeout=30)
        unary_errors.append((caught.value.code().name, caught.value.details()))
    bad = iter(_bad(images[:1]))
    sent = []
    for i in range(len(images)):
        sent.append(predict(images[i:i + 1], id=f"img{i}", return_gate_activity=i % 2 == 0))
        if i % 8 == 3:
            sent.append(next(bad))
    answers = list(server.classifier.PredictStream(iter(sent), timeout=60))

    assert [a.id for a in answers] == [r.id for r in sent]
    failed = [a for a in answers if a.WhichOneof("result") == "error"]
    assert [(a.error.code, a.error.message) for a in failed] == unary_errors
    good = [a for a in answers if a.WhichOneof("result") == "response"]
    assert len(good) == len(images)
    unary = server.classifier.Predict(predict(images, return_gate_activity=True), timeout=30)
    for i, answer in enumerate(good):
        assert answer.response.id == f"img{i}" and answer.response.model_version == LATEST
        (prediction,) = answer.response.predictions
        expected = unary.predictions[i]
        assert prediction.digit == expected.digit
        np.testing.assert_allclose(prediction.probabilities, expected.probabilities, atol=1e-6)
        assert len(prediction.gate_activity) == (8 if i % 2 == 0 else 0)
    digits = np.array([a.response.predictions[0].digit for a in good])
    assert (digits == fixture_mnist.y_test[:40]).mean() >= 0.95


def test_each_request_is_observed_under_predict_stream(server, fixture_mnist):
    def count(code: str) -> float:
        return server.metric("highway_request_duration_seconds_count",
                             {"method": "PredictStream", "code": code})

    ok, bad = count("OK"), count("NOT_FOUND")
    sent = [predict(fixture_mnist.x_test[:2], id="a"), predict(fixture_mnist.x_test[:1], id="b",
                                                              model_name="other")]
    answers = list(server.classifier.PredictStream(iter(sent), timeout=30))
    assert [a.WhichOneof("result") for a in answers] == ["response", "error"]
    assert answers[1].error.code == "NOT_FOUND"
    assert (count("OK"), count("NOT_FOUND")) == (ok + 1, bad + 1)


def test_unary_predict_echoes_the_request_id(server, fixture_mnist):
    response = server.classifier.Predict(predict(fixture_mnist.x_test[:1], id="req-7"),
                                         timeout=30)
    assert response.id == "req-7"


def test_a_client_that_half_closes_at_once_gets_an_empty_ok_stream(server):
    call = server.classifier.PredictStream(iter([]), timeout=30)
    assert list(call) == [] and call.code() == grpc.StatusCode.OK


def test_the_shipped_repository_serves_its_two_highest_versions(server, fixture_mnist):
    """config.pbtxt's latest { num_versions: 2 }: fp32 and int8; older versions stay on disk."""
    images = fixture_mnist.x_test[:2]
    for asked, served in ((0, INT8_VERSION), (FP32_VERSION, FP32_VERSION)):
        answer = server.classifier.Predict(predict(images, model_version=asked), timeout=30)
        assert answer.model_version == served
    with pytest.raises(grpc.RpcError) as caught:
        server.classifier.Predict(predict(images, model_version=1), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().endswith(f"no version 1; serving: {FP32_VERSION}, {INT8_VERSION}")
