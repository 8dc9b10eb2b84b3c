"""Export of small trained zoo models: layout, config, metadata, gate nodes and parity."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from export import gates
from export.parity import onnx_outputs
from export.repository import INPUT_SCALING
from tests.conftest import TINY_MODEL_NAME

ZOO = {"fc": ["highway1", "highway2"],
       "conv16": [f"highway_conv{i}" for i in range(1, 9)],
       "seed": ["highway_conv1", "highway_conv2", "highway_conv3"]}


def keras_reference(keras_path, x):
    import keras

    from training.models import with_gate_activity

    model = keras.models.load_model(keras_path, compile=False)
    out = with_gate_activity(model).predict(x, batch_size=500, verbose=0)
    return model.predict(x, batch_size=500, verbose=0), out["gate_activity"]


@pytest.mark.parametrize("name", list(ZOO))
def test_each_highway_layer_is_one_named_gate_function_node(exported, name):
    _, onnx_path = exported(name)
    model = onnx.load(onnx_path)
    nodes = gates.gate_nodes(model)
    assert [n.name for n in nodes] == ZOO[name]
    assert all(len(n.input) == 3 and len(n.output) == 2 for n in nodes)
    (function,) = model.functions
    assert (function.domain, function.name) == ("highway", "HighwayGate")
    assert [n.op_type for n in function.node] == ["Constant", "Sigmoid", "Sub", "Mul", "Mul", "Add"]
    assert not [n for n in model.graph.node if n.op_type in ("Sigmoid", "Dropout")]  # seed's
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets[""] >= 17 and opsets["highway"] == 1


@pytest.mark.parametrize("name", list(ZOO))
def test_onnx_computes_what_keras_computes(exported, fixture_mnist, name):
    keras_path, onnx_path = exported(name)
    x = fixture_mnist.x_test[:1000]
    p_keras, g_keras = keras_reference(keras_path, x)
    p_onnx, g_onnx = onnx_outputs(onnx_path, x)
    assert np.max(np.abs(p_keras - p_onnx)) <= 1e-5
    assert np.array_equal(p_keras.argmax(1), p_onnx.argmax(1))
    assert g_onnx.shape == (1000, len(ZOO[name]))
    assert np.max(np.abs(g_keras - g_onnx)) <= 1e-5
    assert np.all((g_onnx > 0) & (g_onnx < 1))  # means of sigmoids


def test_batch_dimension_is_dynamic(exported_repository, fixture_mnist):
    onnx_path = exported_repository / TINY_MODEL_NAME / "1" / "model.onnx"
    model = onnx.load(onnx_path)
    (images,) = model.graph.input
    dims = images.type.tensor_type.shape.dim
    assert images.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert not dims[0].HasField("dim_value") and [d.dim_value for d in dims[1:]] == [28, 28]
    whole, _ = onnx_outputs(onnx_path, fixture_mnist.x_test[:7])
    for batch in (1, 3):
        part, gate = onnx_outputs(onnx_path, fixture_mnist.x_test[:batch])
        assert part.shape == (batch, 10) and gate.shape == (batch, 2)
        np.testing.assert_allclose(part, whole[:batch], atol=1e-6)


def test_metadata_records_provenance(exported_repository, tiny_keras_model):
    from export.repository import sha256

    model = onnx.load(exported_repository / TINY_MODEL_NAME / "1" / "model.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    metrics = json.loads((tiny_keras_model.parent / "metrics.json").read_text())
    assert json.loads(props["highway_layers"]) == ZOO["fc"]
    assert props["source_sha256"] == sha256(tiny_keras_model)
    assert float(props["test_accuracy"]) == pytest.approx(metrics["test_accuracy"])
    assert props["training_command"] == metrics["command"]
    assert {"tensorflow", "tf2onnx", "onnx", "onnxruntime"} <= set(json.loads(props["versions"]))
    assert props["opset"] == "17"
    assert props["input_scaling"] == INPUT_SCALING
    assert props["gate_reference"] == "gate_reference.json"  # beside the model


def test_gate_reference_holds_the_verification_images_gate_deciles(tiny_repository):
    from highway_core import drift

    reference = drift.read(tiny_repository / TINY_MODEL_NAME / "1" / drift.FILENAME, ZOO["fc"])
    assert reference.images == 1000  # the verification images
    for layer in reference.layers:
        assert len(layer.edges) == 9 and abs(layer.shares.sum() - 1) < 1e-9
        assert layer.edges[0] < layer.mean < layer.edges[-1]


def test_repository_has_tritons_layout(exported_repository):
    model_dir = exported_repository / TINY_MODEL_NAME
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "config.pbtxt", "labels.txt"]
    assert sorted(p.name for p in (model_dir / "1").iterdir()) == [
        "curves.png", "gate_reference.json", "history.csv", "metrics.json", "model.onnx",
        "verification.json", "verification.png"]
    assert (model_dir / "labels.txt").read_text() == "".join(f"{d}\n" for d in range(10))


def test_config_parses_as_tritons_model_config(exported_repository):
    # In a fresh interpreter: tritonclient's model_config_pb2 shares the "inference"
    # proto package with our own stubs, and one process cannot load both.
    script = (
        "import sys, json\n"
        "from google.protobuf import text_format, json_format\n"
        "from tritonclient.grpc import model_config_pb2 as mc\n"
        "c = text_format.Parse(open(sys.argv[1]).read(), mc.ModelConfig())\n"
        "print(json_format.MessageToJson(c))\n"
    )
    config = exported_repository / TINY_MODEL_NAME / "config.pbtxt"
    out = subprocess.run([sys.executable, "-c", script, str(config)], check=True,
                         capture_output=True, text=True).stdout
    c = json.loads(out)
    assert c["name"] == "highway_mnist" and c["platform"] == "onnxruntime_onnx"
    assert c["maxBatchSize"] == 64
    assert c["input"] == [{"name": "images", "dataType": "TYPE_UINT8", "dims": ["28", "28"]}]
    assert c["output"] == [
        {"name": "probabilities", "dataType": "TYPE_FP32", "dims": ["10"],
         "labelFilename": "labels.txt"},
        {"name": "gate_activity", "dataType": "TYPE_FP32", "dims": ["2"]},
    ]
    assert c["dynamicBatching"] == {"maxQueueDelayMicroseconds": "500"}
    assert c["versionPolicy"] == {"latest": {"numVersions": 1}}
    assert c["parameters"] == {"highway_layers": {"stringValue": "highway1,highway2"}}


def test_verification_report_shows_parity_on_real_images(exported_repository):
    report = json.loads(
        (exported_repository / TINY_MODEL_NAME / "1" / "verification.json").read_text())
    assert report["passed"] is True
    assert report["images"] >= 1000 and report["data"] == "tests/fixtures/mnist"
    assert report["max_abs_diff_probabilities"] <= 1e-5
    assert report["max_abs_diff_gate_activity"] <= 1e-5
    assert report["top1_agreement"] == 1.0 and report["top1_mismatches"] == 0
    assert report["gate_nodes"] == report["highway_layers"] == ZOO["fc"]
    assert report["opset"] == 17 and "onnxruntime" in report["versions"] and report["time"]
