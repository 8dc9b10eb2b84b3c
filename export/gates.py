"""Graph pass: each highway layer's gate becomes one ``highway.HighwayGate`` function node.

tf2onnx spells a highway layer's combination as five loose ops::

    t = Sigmoid(z)            z: the gate logits W_T x + b_T
    c = Sub(1, t)             the carry gate
    Mul(h, t), Mul(x, c)      h: the transform H(x); x: the layer input
    y = Add(Mul(h, t), Mul(x, c))

The pass finds that pattern by structure (never by node names), replaces the five
nodes by one node calling the model-local function ``HighwayGate(x, h, z) -> (y, t)``
whose body is exactly those ops, and names the node after its Keras layer. T stays
an output because ``gate_activity`` averages it. Runtimes inline the function, so
the numbers do not change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.errors import ExportError

DOMAIN = "highway"
FUNCTION = "HighwayGate"
FUNCTION_INPUTS = ("x", "h", "z")
FUNCTION_OUTPUTS = ("y", "t")
BODY_OPS = ("Constant", "Sigmoid", "Sub", "Mul", "Mul", "Add")  # in body order


@dataclass(frozen=True)
class Gate:
    """One matched highway combination: its tensors and the five nodes that compute it."""

    x: str
    h: str
    z: str
    y: str
    t: str
    nodes: tuple[onnx.NodeProto, ...]  # sigmoid, sub, mul(h, t), mul(x, c), add


def gate_function(opset: int) -> onnx.FunctionProto:
    """The ``HighwayGate`` function: ``t = σ(z)``, ``y = h·t + x·(1 − t)`` (float32)."""
    nodes = [
        helper.make_node("Constant", [], ["one"],
                         value=numpy_helper.from_array(np.array(1.0, np.float32))),
        helper.make_node("Sigmoid", ["z"], ["t"]),
        helper.make_node("Sub", ["one", "t"], ["carry"]),
        helper.make_node("Mul", ["h", "t"], ["transformed"]),
        helper.make_node("Mul", ["x", "carry"], ["carried"]),
        helper.make_node("Add", ["transformed", "carried"], ["y"]),
    ]
    return helper.make_function(
        DOMAIN, FUNCTION, list(FUNCTION_INPUTS), list(FUNCTION_OUTPUTS), nodes,
        [helper.make_opsetid("", opset)],
        doc_string="Highway transform gate: t = sigmoid(z); y = h * t + x * (1 - t).",
    )


def gate_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The main graph's ``HighwayGate`` nodes, in graph order."""
    return [n for n in model.graph.node if n.domain == DOMAIN and n.op_type == FUNCTION]


def find_gates(graph: onnx.GraphProto) -> list[Gate]:
    """Every Sigmoid whose output gates a transform and, through ``1 − t``, a carry."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = _constants(graph)
    gates = []
    for sig in graph.node:
        if sig.op_type != "Sigmoid" or sig.domain not in ("", "ai.onnx"):
            continue
        gate = _match(sig, consumers, constants)
        if gate is not None:
            gates.append(gate)
    return gates


def fuse_highway_gates(model: onnx.ModelProto, layer_names: Sequence[str]) -> int:
    """Rewrite ``model`` in place; returns the number of gates fused.

    ``layer_names`` are the Keras highway layers in graph order; the gates found
    must match them one to one (count, and each layer's name in its nodes' names).
    """
    graph = model.graph
    if any(f.domain == DOMAIN and f.name == FUNCTION for f in model.functions):
        raise ExportError("the model already has HighwayGate functions")
    gates = find_gates(graph)
    if len(gates) != len(layer_names):
        raise ExportError(f"found {len(gates)} highway gate patterns in the ONNX graph, "
                          f"expected {len(layer_names)} (one per highway layer)")
    for gate, layer in zip(gates, layer_names, strict=True):
        if not any(_mentions(node.name, layer) for node in gate.nodes):
            raise ExportError(f"gate computing {gate.y!r} does not belong to layer {layer!r} "
                              "(graph order and layer order disagree)")
    removed = {id(node) for gate in gates for node in gate.nodes}
    kept = [node for node in graph.node if id(node) not in removed]
    fused = [helper.make_node(FUNCTION, [g.x, g.h, g.z], [g.y, g.t], name=layer, domain=DOMAIN)
             for g, layer in zip(gates, layer_names, strict=True)]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ExportError("the model imports no default ONNX opset")
    del graph.node[:]
    graph.node.extend(_toposort([*kept, *fused], graph))
    _drop_unused(graph)
    model.functions.append(gate_function(opset))
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return len(gates)


def _match(sig, consumers, constants) -> Gate | None:
    t = sig.output[0]
    users = consumers.get(t, [])
    subs = [n for n in users if n.op_type == "Sub" and list(n.input[1:]) == [t]
            and _is_one(constants.get(n.input[0]))]
    muls = [n for n in users if n.op_type == "Mul" and t in n.input and n.input[0] != n.input[1]]
    if len(subs) != 1 or len(muls) != 1:
        return None
    sub, mul_h = subs[0], muls[0]
    carries = consumers.get(sub.output[0], [])
    if len(carries) != 1 or carries[0].op_type != "Mul":
        return None
    mul_x = carries[0]
    h = _other(mul_h, t)
    x = _other(mul_x, sub.output[0])
    adds = consumers.get(mul_h.output[0], [])
    if len(adds) != 1 or adds[0].op_type != "Add" or consumers.get(mul_x.output[0]) != adds:
        return None
    add = adds[0]
    if sorted(add.input) != sorted([mul_h.output[0], mul_x.output[0]]):
        return None
    return Gate(x=x, h=h, z=sig.input[0], y=add.output[0], t=t,
                nodes=(sig, sub, mul_h, mul_x, add))


def _other(node: onnx.NodeProto, name: str) -> str:
    return node.input[1] if node.input[0] == name else node.input[0]


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _is_one(value: np.ndarray | None) -> bool:
    return value is not None and value.size >= 1 and bool(np.all(value == 1))


def _mentions(node_name: str, layer: str) -> bool:
    """True when a scope segment of ``node_name`` is ``layer`` (TF may append ``_<n>``)."""
    pattern = re.compile(re.escape(layer) + r"(_\d+)?")
    return any(pattern.fullmatch(segment) for segment in node_name.split("/"))


def _toposort(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Kahn's order, stable with respect to ``nodes``' order."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(nodes), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ExportError("the rewritten graph has a cycle or a dangling input")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    return ordered


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove initializers, Constant nodes and value_info the fused nodes made unused."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    dead = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]
    for node in dead:
        graph.node.remove(node)
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    produced = {name for node in graph.node for name in node.output}
    info = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(info)
