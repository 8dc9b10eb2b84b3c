"""Round trips on real MNIST fixture images: both APIs agree with offline ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from export.parity import onnx_outputs
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve

N = 200


@pytest.fixture(scope="module")
def offline(tiny_repository, fixture_mnist):
    """The same model run in-process by ONNX Runtime on the first N test images."""
    images = fixture_mnist.x_test[:N]
    probabilities, gates = onnx_outputs(tiny_repository / "highway_mnist" / "1" / "model.onnx",
                                        images)
    return images, fixture_mnist.y_test[:N], probabilities, gates


def test_predict_matches_offline_onnx_runtime_digit_for_digit(shared_server, offline):
    images, labels, probabilities, gates = offline
    response = shared_server.classifier.Predict(hw.PredictRequest(
        images=[im.tobytes() for im in images], return_gate_activity=True))
    digits = np.array([p.digit for p in response.predictions])
    served = np.array([list(p.probabilities) for p in response.predictions])
    served_gates = np.array([list(p.gate_activity) for p in response.predictions])
    assert response.model_name == "highway_mnist" and response.model_version == 1
    np.testing.assert_array_equal(digits, probabilities.argmax(1))
    np.testing.assert_allclose(served, probabilities, atol=1e-6)
    np.testing.assert_allclose(served_gates, gates, atol=1e-6)
    assert (digits == labels).mean() == (probabilities.argmax(1) == labels).mean()
    confidence = np.array([p.confidence for p in response.predictions])
    np.testing.assert_allclose(confidence, probabilities.max(1), atol=1e-6)


def test_predict_without_gates_returns_none(shared_server, offline):
    images = offline[0][:3]
    response = shared_server.classifier.Predict(
        hw.PredictRequest(images=[im.tobytes() for im in images]))
    assert [len(p.gate_activity) for p in response.predictions] == [0, 0, 0]
    assert [len(p.probabilities) for p in response.predictions] == [10, 10, 10]


def test_float_pixels_in_unit_range_classify_like_the_bytes(shared_server, offline):
    images, _, probabilities, _ = offline
    floats = (images[:5].astype(np.float32) / 255.0).ravel().tolist()
    response = shared_server.classifier.Predict(hw.PredictRequest(float_pixels=floats))
    served = np.array([list(p.probabilities) for p in response.predictions])
    np.testing.assert_allclose(served, probabilities[:5], atol=1e-6)


def test_model_infer_raw_matches_offline_onnx_runtime(shared_server, offline):
    images, _, probabilities, gates = offline
    tensor = kserve.ModelInferRequest.InferInputTensor(name="images", datatype="UINT8",
                                                       shape=images.shape)
    response = shared_server.kserve.ModelInfer(kserve.ModelInferRequest(
        model_name="highway_mnist", id="req-1", inputs=[tensor],
        raw_input_contents=[images.tobytes()]))
    assert response.id == "req-1" and response.model_version == "1"
    by_name = {o.name: (list(o.shape), raw) for o, raw in
               zip(response.outputs, response.raw_output_contents, strict=True)}
    assert by_name["probabilities"][0] == [N, 10]
    np.testing.assert_allclose(
        np.frombuffer(by_name["probabilities"][1], "<f4").reshape(N, 10), probabilities, atol=1e-6)
    np.testing.assert_allclose(
        np.frombuffer(by_name["gate_activity"][1], "<f4").reshape(N, -1), gates, atol=1e-6)


def test_model_infer_typed_contents_and_one_requested_output(shared_server, offline):
    images, _, probabilities, _ = offline
    tensor = kserve.ModelInferRequest.InferInputTensor(
        name="images", datatype="UINT8", shape=[2, 28, 28],
        contents=kserve.InferTensorContents(uint_contents=images[:2].ravel().tolist()))
    response = shared_server.kserve.ModelInfer(kserve.ModelInferRequest(
        model_name="highway_mnist", inputs=[tensor],
        outputs=[kserve.ModelInferRequest.InferRequestedOutputTensor(name="probabilities")]))
    assert [o.name for o in response.outputs] == ["probabilities"]
    np.testing.assert_allclose(np.frombuffer(response.raw_output_contents[0], "<f4").reshape(2, 10),
                               probabilities[:2], atol=1e-6)


def test_model_infer_fp32_pixels_0_to_255_and_unknown_parameters_ignored(shared_server, offline):
    images, _, probabilities, _ = offline
    tensor = kserve.ModelInferRequest.InferInputTensor(
        name="images", datatype="FP32", shape=[3, 28, 28],
        contents=kserve.InferTensorContents(fp32_contents=images[:3].ravel().tolist()))
    request = kserve.ModelInferRequest(model_name="highway_mnist", inputs=[tensor])
    request.parameters["sequence_id"].int64_param = 7  # perf_analyzer-style extras
    request.parameters["binary_data_output"].bool_param = True
    response = shared_server.kserve.ModelInfer(request)
    out = {o.name: raw for o, raw in zip(response.outputs, response.raw_output_contents,
                                         strict=True)}
    np.testing.assert_allclose(np.frombuffer(out["probabilities"], "<f4").reshape(3, 10),
                               probabilities[:3], atol=1e-6)


def test_request_larger_than_a_run_is_split_and_answered_in_order(start_server, offline):
    running = start_server(max_batch_size=16)
    images, _, probabilities, _ = offline
    response = running.classifier.Predict(hw.PredictRequest(
        images=[im.tobytes() for im in images[:50]]))
    served = np.array([list(p.probabilities) for p in response.predictions])
    np.testing.assert_allclose(served, probabilities[:50], atol=1e-6)
    assert running.metric("highway_batch_size_count") == 4  # 16 + 16 + 16 + 2
    assert running.metric("highway_batch_size_bucket", {"le": "16.0"}) == 4


def test_model_info_and_metadata_describe_the_loaded_model(shared_server):
    info = shared_server.classifier.GetModelInfo(hw.GetModelInfoRequest())
    assert info.name == "highway_mnist" and list(info.versions) == [1]
    assert list(info.highway_layers) == ["highway1", "highway2"]
    assert info.execution_provider == "CPUExecutionProvider"
    assert {t.name: list(t.shape) for t in info.outputs} == {
        "probabilities": [-1, 10], "gate_activity": [-1, 2]}
    assert info.metadata["source_sha256"]
    meta = shared_server.kserve.ModelMetadata(kserve.ModelMetadataRequest(name="highway_mnist"))
    assert meta.platform == "onnxruntime_onnx" and list(meta.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("images", "UINT8", [-1, 28, 28])]
    config = shared_server.kserve.ModelConfig(kserve.ModelConfigRequest(name="highway_mnist"))
    assert config.config.max_batch_size == shared_server.app.settings.max_request_images
    assert config.config.parameters["execution_provider"].string_value == "CPUExecutionProvider"
    assert config.config.parameters["highway_layers"].string_value == "highway1,highway2"
    assert shared_server.kserve.ServerReady(kserve.ServerReadyRequest()).ready
    assert shared_server.kserve.ServerLive(kserve.ServerLiveRequest()).live
    assert shared_server.kserve.ModelReady(kserve.ModelReadyRequest(name="highway_mnist")).ready
    assert not shared_server.kserve.ModelReady(kserve.ModelReadyRequest(name="nope")).ready
    server_meta = shared_server.kserve.ServerMetadata(kserve.ServerMetadataRequest())
    assert server_meta.name == "highway-mnist"
