"""``highway-export --quantize int8``: gates kept as function nodes, weights int8, verified."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export import criteria, gates, quantize
from export.__main__ import main
from export.errors import VerificationError
from export.repository import sha256
from tests.conftest import FIXTURE_MNIST, TINY_MODEL_NAME, TINY_VERSION

INT8_VERSION = TINY_VERSION + 1


@pytest.fixture(scope="module")
def int8_repository(tmp_path_factory, tiny_repository, tiny_keras_model):
    """A copy of the tiny repository with the int8 version written by the CLI beside fp32."""
    repo = tmp_path_factory.mktemp("int8") / "repo"
    shutil.copytree(tiny_repository, repo)
    code = main(["--model", str(tiny_keras_model), "--repository", str(repo),
                 "--data-dir", str(FIXTURE_MNIST), "--quantize", "int8"])
    assert code == 0
    return repo


def model_dir(repo, version):
    return repo / TINY_MODEL_NAME / str(version)


def test_the_cli_adds_the_int8_model_as_the_next_version(int8_repository):
    versions = sorted(p.name for p in (int8_repository / TINY_MODEL_NAME).iterdir()
                      if p.is_dir())
    assert versions == [str(TINY_VERSION), str(INT8_VERSION)]  # no staging or fp32 leftovers
    assert sorted(p.name for p in model_dir(int8_repository, INT8_VERSION).iterdir()
                  if p.name.startswith(".")) == []


def test_every_gate_stays_one_function_node_with_its_float_body(int8_repository):
    model = onnx.load(model_dir(int8_repository, INT8_VERSION) / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert [n.name for n in gates.gate_nodes(model)] == ["highway1", "highway2"]
    (function,) = model.functions
    assert tuple(n.op_type for n in function.node) == gates.BODY_OPS
    assert not [n for n in model.graph.node if n.op_type == "Sigmoid"]


def test_every_weight_op_runs_on_int8_weights(int8_repository):
    model = onnx.load(model_dir(int8_repository, INT8_VERSION) / "model.onnx")
    what = quantize.summary(model)
    assert what["weight_ops"] >= 3 and what["weight_ops_int8"] == what["weight_ops"]
    assert what["quantize_nodes"] > 0  # activations too
    # per-channel: every weight's scale has one entry per output channel
    inits = {i.name: i for i in model.graph.initializer}
    scales = []
    for node in model.graph.node:
        if node.op_type in ("QLinearConv", "QLinearMatMul"):  # QOperator: (w, w_scale) = 3, 4
            weight, scale = node.input[3], node.input[4]
        elif node.op_type == "DequantizeLinear":  # QDQ: the weight's own DequantizeLinear
            weight, scale = node.input[0], node.input[1]
        else:
            continue
        if weight in inits and inits[weight].data_type == onnx.TensorProto.INT8:
            scales.append(inits[scale].dims)
    assert len(scales) == what["weight_ops"]
    assert all(len(dims) == 1 and dims[0] > 1 for dims in scales)


def test_verification_holds_int8_to_its_bounds_and_records_them(int8_repository):
    report = json.loads((model_dir(int8_repository, INT8_VERSION) / "verification.json")
                        .read_text())
    assert report["passed"] and report["images"] == 1000
    assert report["tolerance"] == criteria.INT8.as_report()
    assert report["quantization"]["name"] == quantize.SHIPPED.name
    lost = round((report["accuracy_keras"] - report["accuracy_onnx"]) * report["images"])
    assert lost <= 1  # 0.1 point of 1,000 images
    assert report["max_abs_diff_gate_activity"] <= criteria.INT8_GATE_TOLERANCE
    # a 1-epoch model has many near-ties, so int8 moves some top-1s (both ways)
    assert 0.9 <= report["top1_agreement"] <= 1.0
    assert (model_dir(int8_repository, INT8_VERSION) / "verification.png").is_file()


def test_int8_metadata_names_its_recipe_and_its_source(int8_repository, tiny_keras_model):
    model = onnx.load(model_dir(int8_repository, INT8_VERSION) / "model.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    assert props["source_sha256"] == sha256(tiny_keras_model)
    recipe = json.loads(props["quantization"])
    assert recipe["weights"] == "int8 per channel" and recipe["calibration_images"] == 1000
    assert recipe["quant_format"] == quantize.SHIPPED.quant_format


def test_int8_answers_like_fp32_on_test_images(int8_repository, fixture_mnist):
    x, y = fixture_mnist.x_test[1000:2000], fixture_mnist.y_test[1000:2000]  # not verified on
    out = {}
    for version in (TINY_VERSION, INT8_VERSION):
        session = ort.InferenceSession(str(model_dir(int8_repository, version) / "model.onnx"),
                                       providers=["CPUExecutionProvider"])
        out[version] = session.run(["probabilities", "gate_activity"], {"images": x})
    (p32, g32), (p8, g8) = out[TINY_VERSION], out[INT8_VERSION]
    assert abs(np.mean(p8.argmax(1) == y) - np.mean(p32.argmax(1) == y)) <= 0.003
    assert np.max(np.abs(g8 - g32)) <= criteria.INT8_GATE_TOLERANCE
    assert not np.array_equal(p8, p32)  # it really is another model


def test_a_float_model_that_claims_to_be_int8_fails_verification(tmp_path, tiny_repository,
                                                                  tiny_keras_model):
    from export.verify import verify

    model = onnx.load(model_dir(tiny_repository, TINY_VERSION) / "model.onnx")
    model.metadata_props.add(key=quantize.METADATA_KEY, value=json.dumps({"name": "fake"}))
    onnx.save(model, tmp_path / "model.onnx")
    with pytest.raises(VerificationError, match=r"0 of \d+ weight ops have int8 weights"):
        verify(tmp_path / "model.onnx", tiny_keras_model, data_dir=FIXTURE_MNIST)
    assert not json.loads((tmp_path / "verification.json").read_text())["passed"]


@pytest.mark.parametrize(("lost", "passes"), [(0, True), (1, True), (2, False)])
def test_int8_accuracy_bound_counts_images(lost, passes):
    report = {"images": 1000, "accuracy_keras": 0.950, "accuracy_onnx": 0.950 - lost / 1000,
              "max_abs_diff_probabilities": 0.3, "max_abs_diff_gate_activity": 0.01,
              "top1_mismatches": 7}
    assert (criteria.INT8.failures(report) == []) is passes
    assert criteria.FP32.failures(report)  # the same figures fail the float contract


@pytest.mark.parametrize("value", ["int4", "INT8", "fp16", ""])
def test_unsupported_quantize_values_are_refused_in_one_line(tmp_path, capsys, value):
    code = main(["--model", str(tmp_path / "none.keras"), "--repository", str(tmp_path / "r"),
                 "--quantize", value])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"highway-export: error: --quantize {value!r} is not supported; "
                   "choose from int8\n")
    assert not (tmp_path / "r").exists()
