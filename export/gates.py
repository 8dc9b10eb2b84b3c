"""Graph pass: each highway layer's gate becomes one ``highway.HighwayGate`` function node.

tf2onnx spells a highway layer's combination as five loose ops::

    t = Sigmoid(z)            z: the gate logits W_T x + b_T
    c = Sub(1, t)             the carry gate
    Mul(h, t), Mul(x, c)      h: the transform H(x); x: the layer input
    y = Add(Mul(h, t), Mul(x, c))

``export.pattern`` finds that pattern by structure (never by node names), also
when tf2onnx put a layout bridge on the carry path. This pass replaces those
nodes by one node calling the model-local function ``HighwayGate(x, h, z) -> (y, t)``
whose body is exactly those ops, and names the node after its Keras layer. T stays
an output because ``gate_activity`` averages it. Runtimes inline the function, so
the numbers do not change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.errors import ExportError
from export.pattern import Gate, find_gates

DOMAIN = "highway"
FUNCTION = "HighwayGate"
FUNCTION_INPUTS = ("x", "h", "z")
FUNCTION_OUTPUTS = ("y", "t")
BODY_OPS = ("Constant", "Sigmoid", "Sub", "Mul", "Mul", "Add")  # in body order


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


def fuse_highway_gates(model: onnx.ModelProto, layer_names: Sequence[str]) -> int:
    """Rewrite ``model`` in place; returns the number of gates fused.

    ``layer_names`` are the Keras highway layers in graph order; the gates found
    must match them one to one (count, and each layer's name in its nodes' names).
    """
    graph = model.graph
    if any(f.domain == DOMAIN and f.name == FUNCTION for f in model.functions):
        raise ExportError("the model already has HighwayGate functions")
    gates = find_gates(model)
    if len(gates) != len(layer_names):
        raise ExportError(f"found {len(gates)} highway gate patterns in the ONNX graph, "
                          f"expected {len(layer_names)} (one per highway layer)")
    for gate, layer in zip(gates, layer_names, strict=True):
        if not any(_mentions(node.name, layer) for node in gate.nodes):
            raise ExportError(f"gate computing {gate.y!r} does not belong to layer {layer!r} "
                              "(graph order and layer order disagree)")
    removed = {id(node) for gate in gates for node in gate.nodes}
    kept = [node for node in graph.node if id(node) not in removed]
    fused = []
    for gate, layer in zip(gates, layer_names, strict=True):
        x, aligned = _align(gate, layer)
        fused.extend(aligned)
        fused.append(helper.make_node(FUNCTION, [x, gate.h, gate.z], [gate.y, gate.t],
                                      name=layer, domain=DOMAIN))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ExportError("the model imports no default ONNX opset")
    ordered = _toposort([*kept, *fused], graph)  # may refuse: before anything changes
    del graph.node[:]
    graph.node.extend(ordered)
    _drop_unused(graph)
    model.functions.append(gate_function(opset))
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return len(gates)


def _align(gate: Gate, layer: str) -> tuple[str, list[onnx.NodeProto]]:
    """Pass the carry input through a copy of the gate's layout bridge (see ``pattern``)."""
    x, copies = gate.x, []
    for i, node in enumerate(gate.align):
        out = f"{layer}/carry_input_{i}"
        copy = helper.make_node(node.op_type, [x, *node.input[1:]], [out],
                                name=f"{layer}/align_carry_input_{i}", domain=node.domain)
        copy.attribute.extend(node.attribute)
        copies.append(copy)
        x = out
    return x, copies


def _mentions(node_name: str, layer: str) -> bool:
    """True when a scope segment of ``node_name`` is ``layer`` (TF may append ``_<n>``)."""
    pattern = re.compile(re.escape(layer) + r"(_\d+)?")
    return any(pattern.fullmatch(segment) for segment in node_name.split("/"))


def _toposort(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Topological order that keeps ``nodes``' order wherever it is already valid.

    Each node is placed right after its not-yet-placed producers (depth first,
    iteratively: graphs can be deeper than Python's recursion limit).
    """
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    producer = {out: node for node in nodes for out in node.output}
    placed: set[int] = set()
    ordered: list[onnx.NodeProto] = []
    for root in nodes:
        stack, entered = [root], set()
        while stack:
            node = stack[-1]
            if id(node) in placed:
                stack.pop()
                continue
            if any(i not in available and i not in producer for i in node.input):
                raise ExportError(f"node {node.name!r} reads a tensor nothing produces")
            missing = [producer[i] for i in node.input
                       if i not in available and id(producer[i]) not in placed]
            if not missing:
                placed.add(id(node))
                ordered.append(node)
                stack.pop()
            elif id(node) in entered:
                raise ExportError(f"the rewritten graph has a cycle through {node.name!r}")
            else:
                entered.add(id(node))
                stack.extend(missing)
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
