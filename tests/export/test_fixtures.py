"""The shared fixtures other test folders build on give what they promise."""

from __future__ import annotations

import json

import onnx

from tests.conftest import TINY_MODEL_NAME, TINY_VERSION


def test_fixture_mnist_is_the_real_subset(fixture_mnist):
    assert fixture_mnist.x_train.shape == (3000, 28, 28)
    assert fixture_mnist.x_test.shape == (2000, 28, 28)
    assert fixture_mnist.x_test.dtype.name == "uint8"


def test_tiny_repository_has_the_contract_layout(tiny_repository, tiny_keras_model):
    model_dir = tiny_repository / TINY_MODEL_NAME
    version_dir = model_dir / str(TINY_VERSION)
    assert (model_dir / "config.pbtxt").is_file()
    assert (model_dir / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    assert json.loads((version_dir / "verification.json").read_text())["passed"] is True
    model = onnx.load(version_dir / "model.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["highway_layers"]) == ["highway1", "highway2"]
    assert tiny_keras_model.is_file()
