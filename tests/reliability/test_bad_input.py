"""A corpus of malformed requests for both APIs: precise status codes, no crash, no wedge.

Every case goes to the same running server; after the corpus it must still answer
valid requests correctly, and its log must hold no traceback (no case reached an
unexpected exception). Cases are built as real protobuf messages (or raw bytes)
and sent through raw channel methods, as any client could.
"""

from __future__ import annotations

import numpy as np
import pytest

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from tests.reliability.support import (
    assert_serves_correctly,
    channel,
    code_of,
    images,
    infer,
    predict,
    raw_call,
)

INVALID, NOT_FOUND = "INVALID_ARGUMENT", "NOT_FOUND"


def _typed(datatype: str, field: str, values, n: int = 1, shape=None) -> kserve.ModelInferRequest:
    request = kserve.ModelInferRequest(model_name="highway_mnist")
    tensor = request.inputs.add(name="images", datatype=datatype,
                                shape=shape if shape is not None else [n, 28, 28])
    getattr(tensor.contents, field).extend(values)
    return request


def _two_inputs() -> kserve.ModelInferRequest:
    request = infer(1)
    request.inputs.add(name="extra", datatype="UINT8", shape=[1, 28, 28])
    request.raw_input_contents.append(bytes(784))
    return request


def _duplicate_input() -> kserve.ModelInferRequest:
    request = infer(1)
    request.inputs.add(name="images", datatype="UINT8", shape=[1, 28, 28])
    request.raw_input_contents.append(bytes(784))
    return request


def _raw_and_typed() -> kserve.ModelInferRequest:
    request = infer(1)
    request.inputs[0].contents.uint_contents.extend([0] * 784)
    return request


def _outputs(*names: str) -> kserve.ModelInferRequest:
    request = infer(1)
    for name in names:
        request.outputs.add(name=name)
    return request


def _no_data() -> kserve.ModelInferRequest:
    request = kserve.ModelInferRequest(model_name="highway_mnist")
    request.inputs.add(name="images", datatype="UINT8", shape=[1, 28, 28])
    return request


PIXELS = 784
INFER_CASES = {
    "no inputs": (kserve.ModelInferRequest(model_name="highway_mnist"), INVALID),
    "unknown model": (infer(1, model_name="resnet50"), NOT_FOUND),
    "unknown version": (infer(1, model_version="99"), NOT_FOUND),
    "version not a number": (infer(1, model_version="latest"), INVALID),
    "version zero": (infer(1, model_version="0"), INVALID),
    "version negative": (infer(1, model_version="-1"), INVALID),
    "unknown input name": (kserve.ModelInferRequest(
        model_name="highway_mnist",
        inputs=[kserve.ModelInferRequest.InferInputTensor(name="x", datatype="UINT8",
                                                          shape=[1, 28, 28])],
        raw_input_contents=[bytes(784)]), INVALID),
    "two inputs": (_two_inputs(), INVALID),
    "duplicate input": (_duplicate_input(), INVALID),
    "datatype BOOL": (infer(1, datatype="BOOL"), INVALID),
    "datatype empty": (infer(1, datatype=""), INVALID),
    "datatype FP64": (infer(1, datatype="FP64", raw=bytes(8 * PIXELS)), INVALID),
    "rank 2": (infer(1, shape=[28, 28]), INVALID),
    "rank 4": (infer(1, shape=[1, 1, 28, 28]), INVALID),
    "rank 0": (infer(1, shape=[]), INVALID),
    "27x28 images": (infer(1, shape=[1, 27, 28], raw=bytes(27 * 28)), INVALID),
    "negative dimension": (infer(1, shape=[-1, 28, 28]), INVALID),
    "zero images": (infer(1, shape=[0, 28, 28], raw=b""), INVALID),
    "2**62 images declared": (infer(1, shape=[2**62, 28, 28]), INVALID),
    "more images than the limit": (infer(1, shape=[4097, 28, 28]), INVALID),
    "raw too short": (infer(2, raw=bytes(784)), INVALID),
    "raw too long": (infer(1, raw=bytes(785)), INVALID),
    "raw empty": (infer(1, raw=b""), INVALID),
    "FP32 raw of UINT8 size": (infer(1, datatype="FP32"), INVALID),
    "FP32 raw NaN": (infer(1, datatype="FP32",
                           raw=np.full(PIXELS, np.nan, "<f4").tobytes()), INVALID),
    "FP32 raw above 255": (infer(1, datatype="FP32",
                                 raw=np.full(PIXELS, 300, "<f4").tobytes()), INVALID),
    "FP32 raw negative": (infer(1, datatype="FP32",
                                raw=np.full(PIXELS, -1, "<f4").tobytes()), INVALID),
    "FP32 raw Inf": (infer(1, datatype="FP32",
                           raw=np.full(PIXELS, np.inf, "<f4").tobytes()), INVALID),
    "no data at all": (_no_data(), INVALID),
    "raw and typed mixed": (_raw_and_typed(), INVALID),
    "UINT8 in fp32_contents": (_typed("UINT8", "fp32_contents", [0.0] * PIXELS), INVALID),
    "UINT8 in int64_contents": (_typed("UINT8", "int64_contents", [0] * PIXELS), INVALID),
    "UINT8 in bytes_contents": (_typed("UINT8", "bytes_contents", [b"\0"] * PIXELS), INVALID),
    "UINT8 in bool_contents": (_typed("UINT8", "bool_contents", [True] * PIXELS), INVALID),
    "UINT8 value 256": (_typed("UINT8", "uint_contents", [256] * PIXELS), INVALID),
    "UINT8 value 2**32-1": (_typed("UINT8", "uint_contents", [2**32 - 1] * PIXELS), INVALID),
    "UINT8 too few values": (_typed("UINT8", "uint_contents", [0] * 783), INVALID),
    "UINT8 values for 2 images, shape 1": (_typed("UINT8", "uint_contents", [0] * 2 * PIXELS),
                                           INVALID),
    "FP32 in uint_contents": (_typed("FP32", "uint_contents", [0] * PIXELS), INVALID),
    "FP32 typed NaN": (_typed("FP32", "fp32_contents", [float("nan")] * PIXELS), INVALID),
    "FP32 typed -0.5": (_typed("FP32", "fp32_contents", [-0.5] * PIXELS), INVALID),
    "typed empty with huge shape": (_typed("UINT8", "uint_contents", [], shape=[2**40, 28, 28]),
                                    INVALID),
    "unknown output": (_outputs("logits"), INVALID),
    "output twice": (_outputs("probabilities", "probabilities"), INVALID),
}
PREDICT_CASES = {
    "no images": (predict(images=[]), INVALID),
    "unknown model": (predict(1, model_name="resnet50"), NOT_FOUND),
    "unknown version": (predict(1, model_version=99), NOT_FOUND),
    "negative version": (predict(1, model_version=-3), INVALID),
    "image of 783 bytes": (predict(images=[bytes(783)]), INVALID),
    "image of 785 bytes": (predict(images=[bytes(785)]), INVALID),
    "one good one empty image": (predict(images=[bytes(784), b""]), INVALID),
    "images and float_pixels": (predict(images=[bytes(784)], float_pixels=[0.0] * 784),
                                INVALID),
    "float_pixels not a multiple of 784": (predict(float_pixels=[0.0] * 785), INVALID),
    "float_pixels NaN": (predict(float_pixels=[float("nan")] * 784), INVALID),
    "float_pixels above 1": (predict(float_pixels=[1.5] * 784), INVALID),
    "float_pixels negative": (predict(float_pixels=[-0.1] * 784), INVALID),
    "float_pixels -Inf": (predict(float_pixels=[float("-inf")] * 784), INVALID),
    "4097 images (over the limit)": (predict(images=[bytes(784)] * 4097), INVALID),
    "4097 images of float_pixels": (predict(float_pixels=[0.0] * 784 * 4097), INVALID),
    "100,000 tiny images (huge repeated field)": (predict(images=[b"x"] * 100_000), INVALID),
}


@pytest.mark.parametrize("case", sorted(INFER_CASES))
def test_model_infer_bad_input_gets_precise_status(shared_server, case):
    request, expected = INFER_CASES[case]
    with channel(shared_server) as ch:
        assert code_of(raw_call(ch, "ModelInfer"), request.SerializeToString()) == expected


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_bad_input_gets_precise_status(shared_server, case):
    request, expected = PREDICT_CASES[case]
    with channel(shared_server) as ch:
        assert code_of(raw_call(ch, "Predict"), request.SerializeToString()) == expected


@pytest.mark.parametrize("name", ["ModelMetadata", "ModelConfig", "ModelReady"])
def test_unknown_model_in_metadata_calls(shared_server, name):
    request = {"ModelMetadata": kserve.ModelMetadataRequest,
               "ModelConfig": kserve.ModelConfigRequest,
               "ModelReady": kserve.ModelReadyRequest}[name](name="nope", version="x")
    with channel(shared_server) as ch:
        call = ch.unary_unary(f"/inference.GRPCInferenceService/{name}")
        if name == "ModelReady":  # readiness answers "not ready" rather than failing
            answer = kserve.ModelReadyResponse.FromString(call(request.SerializeToString()))
            assert answer.ready is False
        else:
            assert code_of(call, request.SerializeToString()) in (NOT_FOUND, INVALID)
    hw_info = hw.GetModelInfoRequest(model_name="nope").SerializeToString()
    with channel(shared_server) as ch:
        assert code_of(ch.unary_unary("/highway.v1.Classifier/GetModelInfo"), hw_info) == \
            NOT_FOUND


def test_message_over_the_size_limit_is_resource_exhausted(shared_server):
    too_big = infer(1, raw=bytes(65 * 1024 * 1024)).SerializeToString()  # limit: 64 MiB
    with channel(shared_server) as ch:
        assert code_of(raw_call(ch, "ModelInfer"), too_big) == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("api", ["ModelInfer", "Predict"])
def test_random_bytes_as_protobuf_never_crash_or_wedge_the_server(shared_server, api):
    rng = np.random.default_rng(7)
    seen = set()
    with channel(shared_server) as ch:
        call = raw_call(ch, api)
        for size in [0, 1, 2, 3, 7, 16, 100, 784, 5000, 100_000]:
            for _ in range(5):
                seen.add(code_of(call, rng.bytes(size), timeout=10))
    # Empty bytes is a valid (empty) message; most random bytes do not parse at all and
    # must be refused as INVALID_ARGUMENT like any other malformed request.
    assert seen <= {"INVALID_ARGUMENT", "NOT_FOUND"}, seen
    assert_serves_correctly(shared_server)


def test_valid_requests_in_typed_contents_are_answered(shared_server):
    pixels = images(2)
    uint = _typed("UINT8", "uint_contents", pixels.ravel().tolist(), n=2)
    fp32 = _typed("FP32", "fp32_contents", pixels.ravel().astype(float).tolist(), n=2)
    with channel(shared_server) as ch:
        call = raw_call(ch, "ModelInfer")
        a = kserve.ModelInferResponse.FromString(call(uint.SerializeToString(), timeout=30))
        b = kserve.ModelInferResponse.FromString(call(fp32.SerializeToString(), timeout=30))
    assert a.raw_output_contents == b.raw_output_contents  # same pixels, same answer


def test_after_the_corpus_the_server_serves_and_logged_no_traceback(shared_server, server_log):
    # Runs after the corpus (file order); random corpora above may add lines, so
    # only unexpected exceptions in our own handlers are looked for.
    assert_serves_correctly(shared_server)
    log = server_log.read_text(errors="replace")
    handler_failures = [line for line in log.splitlines() if " failed" in line and "ERROR" in line]
    assert not handler_failures, handler_failures[:3]


def test_random_pixels_and_every_valid_size_are_answered(shared_server):
    with channel(shared_server) as ch:
        call = raw_call(ch, "ModelInfer")
        for n in (1, 2, 63, 64, 65, 129):
            request = infer(n, raw=images(n, seed=n).tobytes())
            answer = kserve.ModelInferResponse.FromString(
                call(request.SerializeToString(), timeout=30))
            assert list(answer.outputs[0].shape)[0] == n
