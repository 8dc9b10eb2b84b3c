"""The shared fixtures other test folders build on give what they promise."""

from __future__ import annotations

import json

import onnx

from tests.conftest import TINY_MODEL_NAME, TINY_VERSION


def test_fixture_mnist_is_the_real_subset(fixture_mnist):
    assert fixture_mnist.x_train.shape == (3000, 28, 28)
    assert fixture_mnist.x_test.shape == (2000, 28, 28)
    assert fixture_mnist.x_test.dtype.name == "uint8"


def test_exported_repository_has_the_contract_layout(exported_repository, tiny_keras_model):
    model_dir = exported_repository / TINY_MODEL_NAME
    version_dir = model_dir / str(TINY_VERSION)
    assert (model_dir / "config.pbtxt").is_file()
    assert (model_dir / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    assert json.loads((version_dir / "verification.json").read_text())["passed"] is True
    model = onnx.load(version_dir / "model.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["highway_layers"]) == ["highway1", "highway2"]
    assert tiny_keras_model.is_file()


def _structure(repository) -> dict:
    """What the server and its tests rely on in a repository, without weights or timings."""
    model_dir = repository / TINY_MODEL_NAME
    version_dir = model_dir / str(TINY_VERSION)
    model = onnx.load(version_dir / "model.onnx")

    def tensor(value: onnx.ValueInfoProto) -> tuple:
        shape = value.type.tensor_type.shape
        return (value.name, value.type.tensor_type.elem_type,
                tuple(d.dim_param or d.dim_value for d in shape.dim))

    return {
        "files": sorted(p.relative_to(repository).as_posix()
                        for p in repository.rglob("*") if p.is_file()),
        "config.pbtxt": (model_dir / "config.pbtxt").read_text(),
        "labels.txt": (model_dir / "labels.txt").read_text(),
        "opsets": sorted((o.domain, o.version) for o in model.opset_import),
        "inputs": [tensor(v) for v in model.graph.input],
        "outputs": [tensor(v) for v in model.graph.output],
        # tf2onnx numbers its helper nodes and constants with a process-wide counter, so
        # only the gate nodes' names are compared (they are the Keras layers' names).
        "nodes": [(n.domain, n.op_type) for n in model.graph.node],
        "gate nodes": [n.name for n in model.graph.node if n.op_type == "HighwayGate"],
        "initializers": sorted((t.data_type, tuple(t.dims)) for t in model.graph.initializer),
        "functions": [(f.domain, f.name, tuple(f.input), tuple(f.output),
                       tuple(n.op_type for n in f.node)) for f in model.functions],
        "metadata keys": sorted(p.key for p in model.metadata_props),
        "highway_layers": [p.value for p in model.metadata_props if p.key == "highway_layers"],
        "verification keys": sorted(json.loads((version_dir / "verification.json").read_text())),
        "metrics keys": sorted(json.loads((version_dir / "metrics.json").read_text())),
    }


def test_committed_repository_is_what_the_remake_command_makes(tiny_repository,
                                                               exported_repository):
    """tests/fixtures/model_repository has the structure a fresh export of the same recipe
    has: same files, config, tensors, nodes (one HighwayGate per highway layer), weights'
    shapes. If this fails, the exporter changed: run python -m tests.fixtures.make_repository."""
    committed, fresh = _structure(tiny_repository), _structure(exported_repository)
    assert committed["gate nodes"] == ["highway1", "highway2"]
    for key in fresh:
        assert committed[key] == fresh[key], f"committed fixture differs in {key}"
    report = json.loads((tiny_repository / TINY_MODEL_NAME / "1" / "verification.json")
                        .read_text())
    assert report["passed"] is True
