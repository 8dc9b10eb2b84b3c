"""Fuzz (``-m fuzz``): hypothesis generates requests for both APIs against a real server.

Structured requests (any field, any type, shapes and sizes around the valid ones),
mutated valid requests and raw bytes. Each answer must be OK with a correct
answer, or a refusal with a precise status; the server must never crash, wedge or
hit an unexpected exception. HIGHWAY_FUZZ_EXAMPLES (default 3000) sets the run's size.
"""

from __future__ import annotations

import os
import time

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.harness import check_answer
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from tests.reliability.support import (
    assert_serves_correctly,
    channel,
    infer,
    predict,
    raw_call,
    running_server,
)

REFUSALS = {"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED"}
EXAMPLES = int(os.environ.get("HIGHWAY_FUZZ_EXAMPLES", "3000"))

names = st.sampled_from(["highway_mnist", "", "HIGHWAY_MNIST", "x" * 300]) | st.text(max_size=20)
dims = st.sampled_from([1, 2, 28, 0, -1, 27, 29, 64, 4096, 4097, 2**31, 2**62]) | st.integers(
    -(2**63), 2**63 - 1)
datatypes = st.sampled_from(["UINT8", "FP32", "FP16", "INT64", "BOOL", "BYTES", "", "uint8"])


@st.composite
def infer_requests(draw) -> bytes:
    request = kserve.ModelInferRequest(model_name=draw(names),
                                       model_version=draw(st.sampled_from(["", "1", "0", "2",
                                                                           "-1", "one"])))
    for _ in range(draw(st.integers(0, 3))):
        tensor = request.inputs.add(
            name=draw(st.sampled_from(["images", "images", "x", ""])),
            datatype=draw(datatypes),
            shape=draw(st.one_of(st.just([1, 28, 28]), st.lists(dims, max_size=5))))
        kind = draw(st.sampled_from(["raw", "raw", "uint", "fp32", "int64", "bytes", "none"]))
        count = draw(st.sampled_from([784, 783, 785, 1568, 0, 1]))
        if kind == "raw":
            size = draw(st.sampled_from([784, 784 * 2, 784 * 4, 0, 1, 3136 * 2]))
            request.raw_input_contents.append(draw(st.binary(min_size=size, max_size=size)))
        elif kind == "uint":
            tensor.contents.uint_contents.extend(draw(st.lists(
                st.integers(0, 2**32 - 1), min_size=count, max_size=count)))
        elif kind == "fp32":
            tensor.contents.fp32_contents.extend(draw(st.lists(
                st.floats(width=32), min_size=count, max_size=count)))
        elif kind == "int64":
            tensor.contents.int64_contents.extend([draw(st.integers(-(2**63), 2**63 - 1))] * count)
        elif kind == "bytes":
            tensor.contents.bytes_contents.append(draw(st.binary(max_size=800)))
    for _ in range(draw(st.integers(0, 2))):
        request.outputs.add(name=draw(st.sampled_from(["probabilities", "gate_activity", "y"])))
    return request.SerializeToString()


@st.composite
def predict_requests(draw) -> bytes:
    request = hw.PredictRequest(model_name=draw(names),
                                model_version=draw(st.sampled_from([0, 1, 2, -1, 2**62])),
                                return_gate_activity=draw(st.booleans()))
    if draw(st.booleans()):
        size = draw(st.sampled_from([784, 783, 0, 785]))
        request.images.extend(draw(st.lists(st.binary(min_size=size, max_size=size),
                                            max_size=4)))
    if draw(st.booleans()):
        count = draw(st.sampled_from([784, 1568, 0, 100]))
        request.float_pixels.extend(draw(st.lists(st.floats(width=32), min_size=count,
                                                  max_size=count)))
    return request.SerializeToString()


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    api = draw(st.sampled_from(["ModelInfer", "Predict"]))
    valid = bytearray((infer(2) if api == "ModelInfer" else predict(2)).SerializeToString())
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(valid) - 1))
        valid[i] = draw(st.integers(0, 255))
    return api, bytes(valid)


requests = (st.tuples(st.just("ModelInfer"), infer_requests())
            | st.tuples(st.just("Predict"), predict_requests())
            | mutated()
            | st.tuples(st.sampled_from(["ModelInfer", "Predict"]), st.binary(max_size=2000)))


@pytest.fixture(scope="module")
def fuzz_target(tiny_repository, tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    with running_server(tiny_repository, log=log) as server, channel(server) as ch:
        yield server, {api: raw_call(ch, api) for api in ("ModelInfer", "Predict")}, log
        assert_serves_correctly(server)


@pytest.mark.fuzz
def test_generated_requests_never_break_the_server(fuzz_target):
    server, calls, log = fuzz_target
    seen: dict[str, int] = {}
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(requests)
    def one(case: tuple[str, bytes]) -> None:
        api, payload = case
        try:
            answer = calls[api](payload, timeout=30)
            code = "OK"
        except grpc.RpcError as e:
            code = e.code().name
        seen[code] = seen.get(code, 0) + 1
        assert server.proc.poll() is None, "the server died"
        if code == "OK":
            parsed = (kserve.ModelInferResponse if api == "ModelInfer"
                      else hw.PredictResponse).FromString(answer)
            n = (parsed.outputs[0].shape[0] if api == "ModelInfer" and parsed.outputs
                 else len(getattr(parsed, "predictions", [])))
            if api == "ModelInfer" and "probabilities" in [o.name for o in parsed.outputs]:
                check_answer(api, answer, n)
            assert n >= 1
        else:
            assert code in REFUSALS, code

    one()
    print(f"fuzz: {sum(seen.values())} requests in {time.monotonic() - started:.0f} s: {seen}")
    failures = [line for line in log.read_text(errors="replace").splitlines()
                if "ERROR server" in line and " failed" in line]
    assert not failures, failures[:3]
