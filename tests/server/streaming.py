"""Helpers for the streaming tests: the shipped model, request builders, waiting on gauges.

The streaming tests serve the shipped model (``models/highway_mnist``, no
TensorFlow needed) and send it the committed MNIST fixture's real test images.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from highway_core.facts import MODEL_NAME as MODEL
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from server.settings import Settings, default_repository
from tests.shipped import FP32_DIR


def shipped_settings(**overrides) -> Settings:
    """A test server on the shipped model: loopback, free ports, CPU."""
    values = dict(model_repository=default_repository(), host="127.0.0.1", grpc_port=0,
                  metrics_port=0, device="cpu", grace_period_s=10.0, intra_op_threads=1)
    values.update(overrides)
    return Settings(**values)


def slow_repository(folder: Path) -> Path:
    """A copy of the shipped repository whose config runs one image per model run.

    (config.pbtxt's max_batch_size wins over the server's flag.) Streams of
    requests then keep the model busy long enough to be interrupted.
    """
    shipped = default_repository() / MODEL
    model = folder / MODEL
    (model / "1").mkdir(parents=True)
    shutil.copy(FP32_DIR / "model.onnx", model / "1" / "model.onnx")
    shutil.copy(shipped / "labels.txt", model / "labels.txt")
    config = (shipped / "config.pbtxt").read_text()
    assert "max_batch_size: 64" in config
    (model / "config.pbtxt").write_text(config.replace("max_batch_size: 64", "max_batch_size: 1"))
    return folder


def infer(images: np.ndarray, id: str = "", **fields) -> kserve.ModelInferRequest:
    """A ModelInfer request for uint8 images [N, 28, 28] (fields may break it)."""
    fields.setdefault("model_name", MODEL)
    request = kserve.ModelInferRequest(id=id, **fields)
    request.inputs.add(name="images", datatype="UINT8", shape=list(images.shape))
    request.raw_input_contents.append(images.tobytes())
    return request


def predict(images: np.ndarray, id: str = "", **fields) -> hw.PredictRequest:
    """A Predict request for uint8 images [N, 28, 28]."""
    fields.setdefault("model_name", MODEL)
    return hw.PredictRequest(id=id, images=[image.tobytes() for image in images], **fields)


def digit(response: kserve.ModelInferResponse) -> int:
    """The predicted digit of a one-image ModelInfer response."""
    index = [o.name for o in response.outputs].index("probabilities")
    return int(np.frombuffer(response.raw_output_contents[index], "<f4").argmax())


class HeldOpen:
    """A request iterator that yields its requests, then keeps the stream open until released.

    (gRPC half-closes the stream when a request iterator ends.)
    """

    def __init__(self, requests: list):
        self._requests = requests
        self.release = threading.Event()

    def __iter__(self) -> Iterator:
        yield from self._requests
        self.release.wait(60)
