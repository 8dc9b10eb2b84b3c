"""Find highway combinations in an ONNX graph by structure (never by node names).

A highway layer's output is ``y = h·t + x·(1 − t)`` with ``t = Sigmoid(z)``.
tf2onnx writes it as Sigmoid, Sub(1, t), Mul(h, t), Mul(x, ·), Add — but its
layout optimizer may put a *bridge* of Reshape/Transpose nodes on the carry
path when it keeps ``x`` in another layout than ``t`` (seen on single-channel
convolutions, where NHWC↔NCHW is a Reshape)::

    c = Sub(1, t) → A… → Mul(x, ·) → B… → Add(Mul(h, t), ·)

Because Mul is elementwise, ``B(x ⊙ A(c)) = B(x) ⊙ B(A(c))``, and when B∘A
keeps every element in place (checked with ONNX shape inference) that is
``B(x) ⊙ c``: the gate's carry input is ``x`` passed through a copy of B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

LAYOUT_OPS = ("Reshape", "Transpose")  # ops that only move elements: allowed in bridges
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Gate:
    """One matched highway combination.

    ``x`` is the carry input *before* ``align`` (the bridge B, to be re-applied to
    it); ``nodes`` are every node the fused function node replaces.
    """

    x: str
    h: str
    z: str
    y: str
    t: str
    nodes: tuple[onnx.NodeProto, ...]
    align: tuple[onnx.NodeProto, ...] = ()


class _Graph:
    """Consumers, constants and inferred shapes of one graph, computed once."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attr.t)
        self._model = model
        self._shapes: dict[str, Shape] | None = None

    def only_user(self, name: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 else None

    def shape(self, name: str) -> Shape | None:
        if self._shapes is None:  # shape inference only for graphs that have bridges
            inferred = onnx.shape_inference.infer_shapes(self._model)
            g = inferred.graph
            self._shapes = {v.name: _dims(v) for v in [*g.value_info, *g.input, *g.output]}
        return self._shapes.get(name)


def find_gates(model: onnx.ModelProto) -> list[Gate]:
    """Every highway combination of the main graph, in graph order."""
    g = _Graph(model)
    gates = []
    for sig in model.graph.node:
        if sig.op_type == "Sigmoid" and sig.domain in ("", "ai.onnx"):
            gate = _match(sig, g)
            if gate is not None:
                gates.append(gate)
    return gates


def _match(sig: onnx.NodeProto, g: _Graph) -> Gate | None:
    t = sig.output[0]
    users = g.consumers.get(t, [])
    subs = [n for n in users if n.op_type == "Sub" and list(n.input[1:]) == [t]
            and _is_one(g.constants.get(n.input[0]))]
    muls = [n for n in users if n.op_type == "Mul" and t in n.input and n.input[0] != n.input[1]]
    if len(subs) != 1 or len(muls) != 1:
        return None
    sub, mul_h = subs[0], muls[0]
    bridge_a, mul_x = _bridge(sub.output[0], g)
    if mul_x is None or mul_x.op_type != "Mul":
        return None
    carried = bridge_a[-1].output[0] if bridge_a else sub.output[0]
    x = mul_x.input[1] if mul_x.input[0] == carried else mul_x.input[0]
    bridge_b, add = _bridge(mul_x.output[0], g)
    if add is None or add.op_type != "Add" or g.only_user(mul_h.output[0]) is not add:
        return None
    last = bridge_b[-1].output[0] if bridge_b else mul_x.output[0]
    if sorted(add.input) != sorted([mul_h.output[0], last]):
        return None
    if (bridge_a or bridge_b) and not _bridges_cancel(sub.output[0], x, bridge_a, bridge_b, g):
        return None
    h = mul_h.input[1] if mul_h.input[0] == t else mul_h.input[0]
    nodes = (sig, sub, *bridge_a, mul_h, mul_x, *bridge_b, add)
    return Gate(x=x, h=h, z=sig.input[0], y=add.output[0], t=t, nodes=nodes,
                align=tuple(bridge_b))


def _bridge(name: str, g: _Graph) -> tuple[list[onnx.NodeProto], onnx.NodeProto | None]:
    """Follow single-consumer layout ops from ``name``; returns (them, the next node)."""
    chain: list[onnx.NodeProto] = []
    node = g.only_user(name)
    while node is not None and node.op_type in LAYOUT_OPS and node.input[0] == name:
        chain.append(node)
        name = node.output[0]
        node = g.only_user(name)
    return chain, node


def _bridges_cancel(c: str, x: str, a: list[onnx.NodeProto], b: list[onnx.NodeProto],
                    g: _Graph) -> bool:
    """True when B∘A leaves every element of ``c`` in place and ``x`` matches ``A(c)``."""
    start = g.shape(c)
    mid = g.shape(a[-1].output[0]) if a else start
    end = g.shape(b[-1].output[0]) if b else mid
    if not _same(g.shape(x), mid):  # no broadcasting in the carry product
        return False
    if all(node.op_type == "Transpose" for node in [*a, *b]):
        perm = _composed_perm([*a, *b])  # Transposes only: B∘A must be the identity perm
        return perm is not None and perm == sorted(perm)
    if not _same(start, end):
        return False
    # Reshapes keep row-major order; a Transpose does too when it moves only size-1 axes.
    for node in [*a, *b]:
        if node.op_type == "Transpose" and not _keeps_order(node, g.shape(node.input[0])):
            return False
    return True


def _perm(node: onnx.NodeProto) -> list[int] | None:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)


def _composed_perm(chain: list[onnx.NodeProto]) -> list[int] | None:
    """The axis permutation a chain of Transposes applies (None: a perm is implicit)."""
    total: list[int] | None = None
    for node in chain:
        perm = _perm(node)
        if perm is None or (total is not None and len(perm) != len(total)):
            return None
        total = perm if total is None else [total[axis] for axis in perm]
    return total


def _keeps_order(node: onnx.NodeProto, shape: Shape | None) -> bool:
    perm = _perm(node)
    if shape is None:
        return False
    perm = perm if perm is not None else list(reversed(range(len(shape))))
    moved = [axis for axis in perm if shape[axis] != 1]  # unknown (None) axes count as > 1
    return moved == sorted(moved)


def _same(a: Shape | None, b: Shape | None) -> bool:
    """Same static shape; only the batch axis (0) may be unknown, and then in both."""
    if a is None or b is None or len(a) != len(b) or not a:
        return False
    if any(d is None for d in (*a[1:], *b[1:])):
        return False
    return a[1:] == b[1:] and (a[0] is None) == (b[0] is None) and a[0] == b[0]


def _dims(value: onnx.ValueInfoProto) -> Shape | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def _is_one(value: np.ndarray | None) -> bool:
    return value is not None and value.size >= 1 and bool(np.all(value == 1))
