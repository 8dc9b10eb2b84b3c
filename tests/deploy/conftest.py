"""Fixtures for deploy/: the Prometheus binaries (skip locally without them; CI must have
them), a real server with gate metrics, and known traffic sent to it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from deploy.prometheus_run import binary
from protos.highway.v1 import classifier_pb2 as hw
from server.settings import Settings
from tests.server.helpers import launch

WINDOW = 100


def need(name: str) -> str:
    path = binary(name)
    if path is None:
        message = f"{name} is not installed (Debian's prometheus package holds it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the deploy tests: {message}")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return need("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return need("prometheus")


@pytest.fixture(scope="module")
def gate_server(tiny_repository):
    """A real server on free loopback ports: the tiny model, drift on every scrape."""
    running = launch(Settings(model_repository=tiny_repository, host="127.0.0.1", grpc_port=0,
                              metrics_port=0, device="cpu", intra_op_threads=1,
                              drift_window=WINDOW, drift_interval_s=0.0))
    yield running
    running.close()


def predict(running, images: np.ndarray) -> np.ndarray:
    """Predict with gate activity; returns the gates [N, L] the server reported."""
    response = running.classifier.Predict(hw.PredictRequest(
        images=[im.tobytes() for im in images], return_gate_activity=True))
    return np.array([list(p.gate_activity) for p in response.predictions], dtype=np.float32)
