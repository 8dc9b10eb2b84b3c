"""Helpers for the reliability tests: a real server subprocess, raw calls, request builders.

The server is ``python -m server`` in its own process (started by the benchmark's
:class:`bench.harness.ServerProcess`), so a crash, a hang or an exit code is
observed exactly as an operator would see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np

from bench.harness import METHODS, ServerProcess, check_answer, real_server, request_bytes
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from tests.polling import Samples, scrape, wait_until

MODEL = "highway_mnist"
GRPC_OPTIONS = [("grpc.max_receive_message_length", 128 << 20),
                ("grpc.max_send_message_length", 128 << 20)]


def images(n: int, seed: int = 0) -> np.ndarray:
    """n uint8 images [n, 28, 28] with random pixels."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def infer_bytes(n: int) -> bytes:
    """A valid serialized ModelInfer request for n images."""
    return request_bytes("ModelInfer", MODEL, images(n))


@contextmanager
def running_server(repository: Path, *flags: str, log: Path | None = None
                   ) -> Iterator[ServerProcess]:
    """A ready server subprocess on free ports; stopped (SIGTERM) afterwards."""
    server = real_server(repository, "cpu", 1, list(flags), log)
    try:
        server.wait_ready(METHODS["ModelInfer"], infer_bytes(1), timeout=120)
        yield server
    finally:
        server.stop()


def channel(server: ServerProcess) -> grpc.Channel:
    """A fresh channel to the server (large messages allowed)."""
    return grpc.insecure_channel(server.target, options=GRPC_OPTIONS)


def raw_call(ch: grpc.Channel, api: str):
    """A bytes-in, bytes-out callable for Predict or ModelInfer."""
    return ch.unary_unary(METHODS[api])


def code_of(call, payload: bytes, timeout: float = 30) -> str:
    """The status name a call ends with ("OK" when answered)."""
    try:
        call(payload, timeout=timeout)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def assert_serves_correctly(server: ServerProcess) -> None:
    """Both APIs still answer a valid request with one probability row per image."""
    assert server.proc.poll() is None, "the server process has exited"
    with channel(server) as ch:
        for api in ("ModelInfer", "Predict"):
            answer = raw_call(ch, api)(request_bytes(api, MODEL, images(3)), timeout=30)
            check_answer(api, answer, 3)


def requests_by_code(samples: dict, method: str) -> dict[str, float]:
    """highway_requests_total by status code for one method."""
    out: dict[str, float] = {}
    for (name, labels), value in samples.items():
        d = dict(labels)
        if name == "highway_requests_total" and d.get("method") == method:
            out[d["code"]] = value
    return out


def wait_until_idle(server: ServerProcess, timeout: float = 30) -> Samples:
    """Scrapes until no RPC is in flight; returns that scrape."""
    last: list[Samples] = []

    def idle() -> bool:
        last[:] = [scrape(server.metrics_port)]
        return last[0].get(("highway_inflight_requests", ()), 1) == 0

    wait_until(idle, "no RPC in flight", timeout=timeout, interval=0.1)
    return last[0]


def predict(n: int = 1, **fields) -> hw.PredictRequest:
    """A Predict request (valid unless fields say otherwise)."""
    fields.setdefault("model_name", MODEL)
    if "images" not in fields and "float_pixels" not in fields:
        fields["images"] = [img.tobytes() for img in images(n)]
    return hw.PredictRequest(**fields)


def infer(n: int = 1, datatype: str = "UINT8", shape=None, raw: bytes | None = None,
          **fields) -> kserve.ModelInferRequest:
    """A ModelInfer request with one ``images`` input (valid unless arguments say otherwise)."""
    fields.setdefault("model_name", MODEL)
    request = kserve.ModelInferRequest(**fields)
    request.inputs.add(name="images", datatype=datatype,
                       shape=shape if shape is not None else [n, 28, 28])
    request.raw_input_contents.append(images(n).tobytes() if raw is None else raw)
    return request
