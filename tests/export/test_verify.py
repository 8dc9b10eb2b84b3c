"""Verification passes on a faithful export and fails, in one line, on broken ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import onnx
import pytest
from onnx import helper, numpy_helper

from export import verify
from export.errors import VerificationError
from tests.conftest import TINY_MODEL_NAME


@pytest.fixture
def tiny_onnx(exported_repository, tmp_path):
    """A private copy of the tiny model's version folder; returns its model.onnx."""
    folder = tmp_path / "1"
    shutil.copytree(exported_repository / TINY_MODEL_NAME / "1", folder)
    return folder / "model.onnx"


def mutate(path, change) -> None:
    model = onnx.load(path)
    change(model)
    onnx.save(model, path)


def soften_carry(model: onnx.ModelProto) -> None:
    """The body's constant 1 of ``1 − T`` becomes 0.5: same ops, other numbers."""
    (constant,) = [n for n in model.functions[0].node if n.op_type == "Constant"]
    constant.attribute[0].t.CopyFrom(numpy_helper.from_array(
        numpy_helper.to_array(constant.attribute[0].t) * 0.5))


def report_of(onnx_path) -> dict:
    return json.loads((onnx_path.parent / "verification.json").read_text())


def test_standalone_verification_passes_and_rewrites_the_report(tiny_onnx, tiny_keras_model,
                                                                capsys, monkeypatch):
    # Without --data-dir and $HIGHWAY_DATA_DIR (CI sets it) the fixture is the default.
    monkeypatch.delenv("HIGHWAY_DATA_DIR", raising=False)
    (tiny_onnx.parent / "verification.json").unlink()
    assert verify.main([str(tiny_onnx), "--keras", str(tiny_keras_model)]) == 0
    assert "top-1 agreement 100.00%" in capsys.readouterr().out
    report = report_of(tiny_onnx)
    assert report["passed"] and report["data_origin"] == "repository test fixture"


def test_altered_gate_body_fails_parity(tiny_onnx, tiny_keras_model):
    mutate(tiny_onnx, soften_carry)
    with pytest.raises(VerificationError, match="^verification failed: parity failed: "
                       "probabilities differ by"):
        verify.verify(tiny_onnx, tiny_keras_model)
    report = report_of(tiny_onnx)
    assert report["passed"] is False and report["max_abs_diff_probabilities"] > 1e-3
    assert report["reason"].startswith("parity failed")


def test_gate_body_with_another_op_fails_the_structure_check(tiny_onnx, tiny_keras_model):
    def hard_sigmoid(model):
        model.functions[0].node[1].op_type = "HardSigmoid"

    mutate(tiny_onnx, hard_sigmoid)
    with pytest.raises(VerificationError, match="HighwayGate body is .*HardSigmoid"):
        verify.verify(tiny_onnx, tiny_keras_model)


def test_gate_node_named_after_no_layer_fails(tiny_onnx, tiny_keras_model):
    def rename(model):
        [n for n in model.graph.node if n.op_type == "HighwayGate"][1].name = "gate_b"

    mutate(tiny_onnx, rename)
    with pytest.raises(VerificationError, match=r"gate nodes \['highway1', 'gate_b'\]"):
        verify.verify(tiny_onnx, tiny_keras_model)


def test_loose_sigmoid_fails_even_when_numbers_agree(tiny_onnx, tiny_keras_model):
    def unfuse_t(model):
        # T recomputed outside the function feeds gate_activity: same numbers, loose gate.
        gate = [n for n in model.graph.node if n.op_type == "HighwayGate"][0]
        loose = helper.make_node("Sigmoid", [gate.input[2]], ["loose_t"], name="loose")
        for node in model.graph.node:
            node.input[:] = ["loose_t" if i == gate.output[1] else i for i in node.input]
        model.graph.node.insert(list(model.graph.node).index(gate) + 1, loose)

    mutate(tiny_onnx, unfuse_t)
    with pytest.raises(VerificationError, match=r"loose Sigmoid nodes .*\['loose'\]"):
        verify.verify(tiny_onnx, tiny_keras_model)


def test_invalid_graph_fails_the_onnx_checker(tiny_onnx, tiny_keras_model):
    def dangle(model):
        model.graph.node[1].input[0] = "no_such_tensor"

    mutate(tiny_onnx, dangle)
    with pytest.raises(VerificationError, match="onnx.checker rejected the model"):
        verify.verify(tiny_onnx, tiny_keras_model)


def test_cli_fails_in_one_line_on_a_broken_model(tiny_onnx, tiny_keras_model):
    mutate(tiny_onnx, soften_carry)
    result = subprocess.run(
        [sys.executable, "-m", "export.verify", str(tiny_onnx), "--keras", str(tiny_keras_model)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("export.verify: verification failed: parity failed")
    assert result.stderr.count("\n") == 1 and result.stdout == ""  # no TensorFlow chatter


def test_fewer_than_1000_images_is_refused(tiny_onnx, tiny_keras_model, capsys):
    code = verify.main([str(tiny_onnx), "--keras", str(tiny_keras_model), "--images", "999"])
    assert code == 1
    assert capsys.readouterr().err == "export.verify: --images must be at least 1000, got 999\n"


def test_missing_onnx_file_is_one_line(tmp_path, tiny_keras_model, capsys):
    code = verify.main([str(tmp_path / "none.onnx"), "--keras", str(tiny_keras_model)])
    assert code == 1
    assert capsys.readouterr().err == f"export.verify: ONNX model not found: {tmp_path}/none.onnx\n"


def test_file_that_is_not_onnx_fails_in_one_line(tmp_path, tiny_keras_model, capsys):
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07garbage that is no protobuf" * 10)
    code = verify.main([str(tmp_path / "model.onnx"), "--keras", str(tiny_keras_model)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"export.verify: verification failed: cannot load {tmp_path}/model.onnx")
    assert json.loads((tmp_path / "verification.json").read_text())["passed"] is False
