"""The gRPC floor (``python -m bench.floor``): canned answers shaped like the real model's,
so the benchmark's answer check and perf_analyzer accept it as the same model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from bench.harness import METHODS, STREAMS, check_answer, request_bytes
from protos.inference import grpc_service_pb2 as kserve
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from server.settings import default_repository

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["aio", "sync"])
def floor_address(request):
    flags = ["--sync"] if request.param == "sync" else []
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor", "--port", "0", *flags],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "floor server listening on 127.0.0.1:PORT"
    assert "listening on" in line, proc.stderr.read()
    yield line.split()[-1]
    proc.terminate()
    assert proc.wait(30) == 0  # SIGTERM: clean exit


@pytest.mark.parametrize("api", ["ModelInfer", "Predict"])
@pytest.mark.parametrize("n", [1, 64])
def test_floor_answers_as_many_valid_rows_as_images_sent(floor_address, api, n):
    with grpc.insecure_channel(floor_address) as channel:
        answer = channel.unary_unary(METHODS[api])(
            request_bytes(api, "highway_mnist", np.zeros((n, 28, 28), np.uint8)), timeout=10)
    check_answer(api, answer, n)  # raises unless n probability rows summing to 1


@pytest.mark.parametrize("api", ["ModelStreamInfer", "PredictStream"])
def test_floor_streams_answer_each_request_in_turn(floor_address, api):
    sizes = [1, 3, 64, 2]
    with grpc.insecure_channel(floor_address) as channel:
        answers = list(channel.stream_stream(STREAMS[api])(iter(
            [request_bytes(api, "highway_mnist", np.zeros((n, 28, 28), np.uint8))
             for n in sizes]), timeout=10))
    assert len(answers) == len(sizes)
    for answer, n in zip(answers, sizes, strict=True):
        check_answer(api, answer, n)


def test_floor_describes_the_same_tensors_as_the_shipped_model(floor_address, start_server):
    def describe(address: str) -> tuple:
        with grpc.insecure_channel(address) as channel:
            stub = kserve_grpc.GRPCInferenceServiceStub(channel)
            meta = stub.ModelMetadata(kserve.ModelMetadataRequest(name="highway_mnist"),
                                      timeout=10)
            config = stub.ModelConfig(kserve.ModelConfigRequest(name="highway_mnist"),
                                      timeout=10).config
            ready = stub.ModelReady(kserve.ModelReadyRequest(name="highway_mnist"),
                                    timeout=10).ready
        return (ready, meta.platform,
                [(t.name, t.datatype, list(t.shape)) for t in meta.inputs],
                [(t.name, t.datatype, list(t.shape)) for t in meta.outputs],
                [(t.name, t.data_type, list(t.dims)) for t in config.input],
                [(t.name, t.data_type, list(t.dims)) for t in config.output],
                config.max_batch_size)

    shipped = start_server(model_repository=default_repository())
    assert describe(floor_address) == describe(shipped.address)
