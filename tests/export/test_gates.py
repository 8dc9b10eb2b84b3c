"""The gate pass on hand-built ONNX graphs: what it fuses, what it leaves, exact numbers."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export import gates
from export.errors import ExportError

RNG = np.random.default_rng(0)


class Builder:
    """A tiny ONNX graph builder: tensors are names, constants become initializers."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, value) -> str:
        self.count += 1
        name = f"const_{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def shape(self, dims) -> str:
        self.count += 1
        name = f"shape_{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(dims, np.int64), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        out = f"{name}:0"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def model(self, x_shape, outputs: dict[str, tuple[str, list]]) -> onnx.ModelProto:
        """``outputs``: public name → (tensor, shape)."""
        graph = helper.make_graph(
            self.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info(k, TensorProto.FLOAT, shape)
             for k, (_, shape) in outputs.items()],
            self.inits)
        for key, (tensor, _) in outputs.items():  # rename each output tensor to its public name
            for node in graph.node:
                node.input[:] = [key if i == tensor else i for i in node.input]
                node.output[:] = [key if o == tensor else o for o in node.output]
        return helper.make_model(graph, ir_version=8,  # what tf2onnx writes for opset 17
                                 opset_imports=[helper.make_opsetid("", 17)])


def dense_highway(b: Builder, x: str, layer: str, units: int, one: str) -> tuple[str, str]:
    """One tf2onnx-style dense highway layer; returns (y, t)."""
    s = f"model/{layer}_probe_1/{layer}_1"
    h = b.op("Relu", [b.op("Add", [b.op("MatMul", [x, b.const(RNG.normal(size=(units, units)))],
                                        f"{s}/MatMul"), b.const(RNG.normal(size=units))],
                           f"{s}/add")], f"{s}/Relu")
    z = b.op("Add", [b.op("MatMul", [x, b.const(RNG.normal(size=(units, units)))],
                          f"{s}/MatMul_1"), b.const(RNG.normal(size=units))], f"{s}/add_1")
    t = b.op("Sigmoid", [z], f"{s}/Sigmoid")
    carry = b.op("Mul", [x, b.op("Sub", [one, t], f"{s}/sub")], f"{s}/mul_1")
    return b.op("Add", [b.op("Mul", [h, t], f"{s}/mul"), carry], f"{s}/add_2"), t


def dense_model(layers=("highway1", "highway2"), units=5) -> onnx.ModelProto:
    b = Builder()
    one = b.const(1.0)  # shared by every layer, as tf2onnx's constant dedup does
    x, means = "x", []
    for layer in layers:
        x, t = dense_highway(b, x, layer, units, one)
        means.append(b.op("ReduceMean", [t], f"model/{layer}_mean", axes=[1]))
    gate = b.op("Concat", means, "model/concat", axis=1)
    head = b.op("Softmax", [b.op("MatMul", [x, b.const(RNG.normal(size=(units, 3)))], "model/p")],
                "model/softmax")
    return b.model(["N", units], {"probabilities": (head, ["N", 3]),
                                  "gate_activity": (gate, ["N", len(layers)])})


def bridged_model(b_perm=None) -> onnx.ModelProto:
    """A single-channel conv-style layer: t in NCHW, x in NHWC, Reshape bridges between.

    With ``b_perm`` the second bridge is a Transpose that does *not* undo the first.
    """
    b = Builder()
    s = "model/highway_conv1_probe_1/highway_conv1_1"
    x_nhwc = b.op("Reshape", ["x", b.shape([-1, 4, 3, 1])], "model/reshape")
    x_nchw = b.op("Reshape", [x_nhwc, b.shape([-1, 1, 4, 3])], f"{s}/convolution__1")
    h = b.op("Relu", [b.op("Mul", [x_nchw, b.const(RNG.normal(size=(1, 4, 3)))], "Mul__9")],
             f"{s}/Relu")
    t = b.op("Sigmoid", [b.op("Add", [x_nchw, b.const(RNG.normal(size=(1, 4, 3)))], "Conv__2")],
             f"{s}/Sigmoid")
    c = b.op("Reshape", [b.op("Sub", [b.const([1.0]), t], f"{s}/sub"), b.shape([-1, 4, 3, 1])],
             "Transpose__155")
    m = b.op("Mul", [x_nhwc, c], f"{s}/mul_1")
    if b_perm is None:
        m = b.op("Reshape", [m, b.shape([-1, 1, 4, 3])], "Transpose__108")
    else:
        m = b.op("Transpose", [b.op("Reshape", [m, b.shape([-1, 3, 4, 1])], "r")],
                 "Transpose__108", perm=b_perm)
    y = b.op("Add", [b.op("Mul", [h, t], f"{s}/mul"), m], f"{s}/add_2")
    mean = b.op("ReduceMean", [t], "model/Mean", axes=[1, 2, 3])
    return b.model(["N", 12], {"y": (y, ["N", 1, 4, 3]), "gate_activity": (mean, ["N", 1, 1, 1])})


def run_inputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    return run_inputs(model, {"x": x})


def fused(model: onnx.ModelProto, layers) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    assert gates.fuse_highway_gates(copy, layers) == len(layers)
    onnx.checker.check_model(copy, full_check=True)
    return copy


def test_dense_gates_become_named_function_nodes_and_compute_the_same():
    model = dense_model()
    after = fused(model, ["highway1", "highway2"])
    assert [(n.op_type, n.domain, n.name) for n in gates.gate_nodes(after)] == [
        ("HighwayGate", "highway", "highway1"), ("HighwayGate", "highway", "highway2")]
    assert not [n for n in after.graph.node if n.op_type in ("Sigmoid", "Sub")]
    assert [n.op_type for n in after.graph.node].count("Mul") == 0
    x = RNG.normal(size=(9, 5)).astype(np.float32)
    for before, now in zip(run(model, x), run(after, x), strict=True):
        np.testing.assert_array_equal(before, now)  # inlined, the same ops: bit for bit


def test_function_body_is_the_highway_combination():
    body = gates.gate_function(17)
    assert list(body.input) == ["x", "h", "z"] and list(body.output) == ["y", "t"]
    assert tuple(n.op_type for n in body.node) == gates.BODY_OPS
    h, z, x = (RNG.normal(size=(4, 6)).astype(np.float32) for _ in range(3))
    graph = helper.make_graph(
        [helper.make_node("HighwayGate", ["x", "h", "z"], ["y", "t"], domain="highway")], "f",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 6]) for n in ("x", "h", "z")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 6]) for n in ("y", "t")])
    model = helper.make_model(graph, ir_version=8, functions=[body], opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("highway", 1)])
    y, t = run_inputs(model, {"x": x, "h": h, "z": z})
    expected_t = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(t, expected_t, rtol=1e-6)
    np.testing.assert_allclose(y, h * expected_t + x * (1 - expected_t), rtol=1e-5, atol=1e-6)


def test_gate_behind_a_reshape_bridge_is_fused_with_the_carry_input_aligned():
    model = bridged_model()
    after = fused(model, ["highway_conv1"])
    (node,) = gates.gate_nodes(after)
    assert node.name == "highway_conv1"
    assert not [n for n in after.graph.node if n.name in ("Transpose__155", "Transpose__108")]
    x = RNG.normal(size=(6, 12)).astype(np.float32)
    for before, now in zip(run(model, x), run(after, x), strict=True):
        np.testing.assert_array_equal(before, now)


def test_bridge_that_moves_elements_is_not_taken_for_a_gate():
    model = bridged_model(b_perm=[0, 3, 2, 1])  # Reshape then a real transpose: no identity
    assert gates.find_gates(model) == []
    with pytest.raises(ExportError, match="found 0 highway gate patterns.*expected 1"):
        gates.fuse_highway_gates(model, ["highway_conv1"])


def test_sigmoid_that_gates_nothing_is_left_alone():
    b = Builder()
    y = b.op("Sigmoid", ["x"], "model/out/Sigmoid")
    z = b.op("Mul", [y, b.op("Sub", [b.const(1.0), y], "model/out/sub")], "model/out/mul")
    model = b.model(["N", 3], {"p": (z, ["N", 3])})  # σ·(1 − σ): a Sub from 1, but no highway carry
    assert gates.find_gates(model) == []


def test_sub_from_a_constant_other_than_one_is_not_a_carry_gate():
    model = dense_model(layers=("highway1",))
    two = numpy_helper.from_array(np.asarray(2.0, np.float32), "const_1")
    model.graph.initializer[0].CopyFrom(two)  # the shared "1" of 1 − T becomes 2
    assert gates.find_gates(model) == []


def test_layer_names_must_match_the_gates_in_graph_order():
    with pytest.raises(ExportError, match="does not belong to layer 'highway2'"):
        gates.fuse_highway_gates(dense_model(), ["highway2", "highway1"])


def test_count_mismatch_is_refused_and_the_model_is_untouched():
    model = dense_model()
    before = model.SerializeToString()
    with pytest.raises(ExportError, match="found 2 .* expected 3"):
        gates.fuse_highway_gates(model, ["highway1", "highway2", "highway3"])
    assert model.SerializeToString() == before


def test_fusing_twice_is_refused():
    model = fused(dense_model(), ["highway1", "highway2"])
    with pytest.raises(ExportError, match="already has HighwayGate"):
        gates.fuse_highway_gates(model, ["highway1", "highway2"])


def test_unused_constants_of_the_fused_ops_are_dropped():
    after = fused(dense_model(), ["highway1", "highway2"])
    used = {i for n in after.graph.node for i in n.input}
    assert all(init.name in used for init in after.graph.initializer)
    assert "const_1" not in {init.name for init in after.graph.initializer}  # the shared 1
