"""The whole pipeline in one test: train, export, serve, and the served answers are Keras'.

Every other server test serves the committed fixture repository, so this is the
one place where a model trained now goes through the exporter into a real server
(TensorFlow needed; the train extra).
"""

from __future__ import annotations

import numpy as np

from protos.highway.v1 import classifier_pb2 as hw
from server.settings import Settings
from tests.server.helpers import launch


def test_a_model_trained_now_is_exported_and_served_with_keras_answers(
        tiny_keras_model, exported_repository, fixture_mnist):
    import keras

    from training.models import highway_layers, with_gate_activity

    images = fixture_mnist.x_test[:100]
    model = keras.models.load_model(tiny_keras_model, compile=False)
    expected = with_gate_activity(model).predict(images, batch_size=100, verbose=0)
    running = launch(Settings(model_repository=exported_repository, host="127.0.0.1",
                              grpc_port=0, metrics_port=-1, device="cpu", intra_op_threads=1))
    try:
        info = running.classifier.GetModelInfo(hw.GetModelInfoRequest(), timeout=10)
        response = running.classifier.Predict(hw.PredictRequest(
            images=[im.tobytes() for im in images], return_gate_activity=True), timeout=60)
    finally:
        running.close()
    assert list(info.highway_layers) == [layer.name for layer in highway_layers(model)]
    served = np.array([list(p.probabilities) for p in response.predictions])
    gates = np.array([list(p.gate_activity) for p in response.predictions])
    np.testing.assert_allclose(served, expected["probabilities"], atol=1e-5)
    np.testing.assert_allclose(gates, expected["gate_activity"], atol=1e-5)
    assert [p.digit for p in response.predictions] == list(served.argmax(1))
