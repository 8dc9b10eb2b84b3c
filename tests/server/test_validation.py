"""Malformed requests get INVALID_ARGUMENT or NOT_FOUND naming the problem; the server lives on."""

from __future__ import annotations

from dataclasses import replace

import grpc
import numpy as np
import pytest

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from tests.server.helpers import launch

Tensor = kserve.ModelInferRequest.InferInputTensor
Output = kserve.ModelInferRequest.InferRequestedOutputTensor
ONE = bytes(784)
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


def infer(*inputs, raw=(), outputs=(), model="highway_mnist", version=""):
    return kserve.ModelInferRequest(model_name=model, model_version=version, inputs=list(inputs),
                                    raw_input_contents=list(raw),
                                    outputs=[Output(name=o) for o in outputs])


def images(shape=(1, 28, 28), datatype="UINT8", name="images", **contents):
    tensor = Tensor(name=name, datatype=datatype, shape=list(shape))
    if contents:
        tensor.contents.CopyFrom(kserve.InferTensorContents(**contents))
    return tensor


PREDICT_CASES = {
    "empty batch": (hw.PredictRequest(), INVALID, "empty batch"),
    "image of the wrong size": (hw.PredictRequest(images=[ONE, bytes(783)]), INVALID,
                                "images[1] has 783 bytes"),
    "bytes and floats mixed": (hw.PredictRequest(images=[ONE], float_pixels=[0.0] * 784),
                               INVALID, "not both"),
    "float count not whole images": (hw.PredictRequest(float_pixels=[0.0] * 785), INVALID,
                                     "not a multiple of 784"),
    "NaN float pixel": (hw.PredictRequest(float_pixels=[float("nan")] + [0.0] * 783), INVALID,
                        "NaN or Inf"),
    "Inf float pixel": (hw.PredictRequest(float_pixels=[float("inf")] + [0.0] * 783), INVALID,
                        "NaN or Inf"),
    "float pixel above 1": (hw.PredictRequest(float_pixels=[1.5] + [0.0] * 783), INVALID,
                            "[0, 1]"),
    "negative float pixel": (hw.PredictRequest(float_pixels=[-0.1] + [0.0] * 783), INVALID,
                             "[0, 1]"),
    "batch over the request limit": (hw.PredictRequest(images=[ONE] * 101), INVALID,
                                     "exceeds the per-request limit of 100"),
    "unknown model": (hw.PredictRequest(model_name="mnist_v9", images=[ONE]), NOT_FOUND,
                      "unknown model 'mnist_v9'"),
    "unknown version": (hw.PredictRequest(model_version=7, images=[ONE]), NOT_FOUND,
                        "no version 7"),
    "negative version": (hw.PredictRequest(model_version=-1, images=[ONE]), INVALID,
                         "negative"),
}

INFER_CASES = {
    "no inputs": (infer(), INVALID, "no inputs"),
    "wrong datatype": (infer(images(datatype="INT64"), raw=[bytes(784 * 8)]), INVALID,
                       "datatype 'INT64'"),
    "wrong rank": (infer(images(shape=(28, 28)), raw=[ONE]), INVALID, "rank 2"),
    "wrong image size": (infer(images(shape=(1, 32, 32)), raw=[bytes(1024)]), INVALID,
                         "32x32"),
    "byte count not matching the shape": (infer(images(shape=(2, 28, 28)), raw=[ONE]), INVALID,
                                          "needs 1568 bytes, got 784"),
    "negative dimension": (infer(images(shape=(-1, 28, 28)), raw=[ONE]), INVALID,
                           "negative dimension"),
    "absurd dimension": (infer(images(shape=(2**62, 28, 28)), raw=[ONE]), INVALID,
                         "exceeds the per-request limit"),
    "empty batch": (infer(images(shape=(0, 28, 28)), raw=[b""]), INVALID, "empty batch"),
    "batch over the limit": (infer(images(shape=(101, 28, 28)), raw=[bytes(784 * 101)]),
                             INVALID, "exceeds the per-request limit of 100"),
    "unknown input name": (infer(images(name="pixels"), raw=[ONE]), INVALID,
                           "unknown input 'pixels'"),
    "duplicate inputs": (infer(images(), images(), raw=[ONE, ONE]), INVALID,
                         "duplicate input 'images'"),
    "unknown output name": (infer(images(), raw=[ONE], outputs=["logits"]), INVALID,
                            "unknown output 'logits'"),
    "output requested twice": (infer(images(), raw=[ONE], outputs=["probabilities"] * 2),
                               INVALID, "requested twice"),
    "raw and typed mixed": (infer(images(uint_contents=[0] * 784), raw=[ONE]), INVALID,
                            "mixed"),
    "more raw contents than inputs": (infer(images(), raw=[ONE, ONE]), INVALID,
                                      "2 raw_input_contents for 1 inputs"),
    "no data at all": (infer(images()), INVALID, "no data"),
    "typed contents of the wrong length": (infer(images(uint_contents=[0] * 783)), INVALID,
                                           "holds 783 values"),
    "typed contents in the wrong field": (infer(images(int_contents=[0] * 784)), INVALID,
                                          "go in uint_contents, not int_contents"),
    "uint8 value above 255": (infer(images(uint_contents=[256] + [0] * 783)), INVALID,
                              "0..255"),
    "NaN in FP32 input": (infer(images(datatype="FP32", fp32_contents=[float("nan")] * 784)),
                          INVALID, "NaN or Inf"),
    "FP32 pixel above 255": (infer(images(datatype="FP32"),
                                   raw=[np.full(784, 300, "<f4").tobytes()]), INVALID,
                             "[0, 255]"),
    "unknown model": (infer(images(), raw=[ONE], model="resnet"), NOT_FOUND,
                      "unknown model 'resnet'"),
    "unknown version": (infer(images(), raw=[ONE], version="3"), NOT_FOUND, "no version 3"),
    "version not a number": (infer(images(), raw=[ONE], version="latest"), INVALID,
                             "not a positive integer"),
}


@pytest.fixture(scope="module")
def server(base_settings):
    running = launch(replace(base_settings, max_request_images=100))
    yield running
    running.close()


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predict_refuses(server, case):
    request, code, fragment = PREDICT_CASES[case]
    with pytest.raises(grpc.RpcError) as caught:
        server.classifier.Predict(request, timeout=10)
    assert caught.value.code() == code
    assert fragment in caught.value.details()


@pytest.mark.parametrize("case", INFER_CASES)
def test_model_infer_refuses(server, case):
    request, code, fragment = INFER_CASES[case]
    with pytest.raises(grpc.RpcError) as caught:
        server.kserve.ModelInfer(request, timeout=10)
    assert caught.value.code() == code
    assert fragment in caught.value.details()


def test_after_every_refusal_the_server_still_classifies(server):
    for request, *_ in PREDICT_CASES.values():
        with pytest.raises(grpc.RpcError):
            server.classifier.Predict(request, timeout=10)
    response = server.classifier.Predict(hw.PredictRequest(images=[ONE]), timeout=10)
    assert len(response.predictions) == 1
    refused = sum(server.metric("highway_requests_total", {"method": m, "code": c})
                  for m in ("Predict", "ModelInfer") for c in ("INVALID_ARGUMENT", "NOT_FOUND"))
    assert refused >= len(PREDICT_CASES)


def test_default_message_limit_takes_a_64_mib_request(start_server):
    running = start_server()
    assert running.app.settings.max_message_bytes >= 64 * 1024 * 1024
    n = 4096  # 3.2 MB of pixels; larger requests are refused by the image limit first
    response = running.kserve.ModelInfer(infer(images(shape=(n, 28, 28)),
                                               raw=[bytes(784 * n)]), timeout=60)
    assert list(response.outputs[0].shape)[0] == n


def test_oversized_message_is_refused_with_resource_exhausted(start_server):
    running = start_server(max_message_bytes=100_000)
    with pytest.raises(grpc.RpcError) as caught:
        running.classifier.Predict(hw.PredictRequest(images=[ONE] * 200), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("method", ["/highway.v1.Classifier/Predict",
                                    "/inference.GRPCInferenceService/ModelInfer"])
def test_bytes_that_are_not_protobuf_get_invalid_argument_and_are_counted(server, method):
    name = method.rsplit("/", 1)[1]
    before = server.metric("highway_requests_total", {"method": name, "code": "INVALID_ARGUMENT"})
    call = server.channel.unary_unary(method)
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)  # field 1 claims an absurd length
    assert caught.value.code() == INVALID
    assert "not a valid" in caught.value.details()
    after = server.metric("highway_requests_total", {"method": name, "code": "INVALID_ARGUMENT"})
    assert after == before + 1
