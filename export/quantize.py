"""int8 post-training quantization that keeps every highway gate one function node.

ONNX Runtime's static quantizer works on the main graph only: it never looks
inside model-local functions. So the ``HighwayGate`` bodies (Sigmoid, Sub, Mul,
Add) stay float32, and what gets quantized is what the main graph computes with
weights: the convolutions and the classifier's MatMul (per-channel int8 weights,
int32 biases, activations calibrated on training images). A recipe may also put
the gates' three inputs through Quantize/Dequantize, which changes their values
but not the gate's ops. ``quant_pre_process`` runs with ``skip_optimization``:
its default optimisation would inline the gate functions and the gate nodes would
be gone.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from export import gates
from export.errors import ExportError
from highway_core.facts import INPUT_NAME

CHOICES = ("int8",)  # values of --quantize
CALIBRATION_IMAGES = 1000  # the first training images (never test images), in batches of 100
WEIGHT_OPS = ("Conv", "MatMul")  # main-graph ops that carry weights
METADATA_KEY = "quantization"  # metadata_props entry of a quantized model (a JSON recipe)


@dataclass(frozen=True)
class Recipe:
    """One way of quantizing the model; the study compares several, the export ships one."""

    name: str
    quant_format: str = "QDQ"  # QDQ (Quantize/Dequantize pairs) or QOperator (QLinearConv …)
    activations: str = "uint8"  # uint8 or int8 activations; weights are always int8
    calibration: str = "MinMax"  # MinMax, Entropy or Percentile
    gate_inputs: bool = False  # also quantize x, h, z of every HighwayGate node
    all_ops: bool = False  # ORT's default: quantize every op it can (gate outputs, Softmax …)
    # 7-bit weights: on x86 without VNNI, ONNX Runtime sums uint8 x int8 products in pairs in
    # 16 bits, which saturates; 2 x 255 x 64 still fits, so the answers do not depend on the CPU.
    reduce_range: bool = False

    def op_types(self) -> list[str] | None:
        if self.all_ops:
            return None
        return [*WEIGHT_OPS, *([gates.FUNCTION] if self.gate_inputs else [])]


# Chosen on the validation images (the last 5,000 training images) by export.quantize_study's
# rule, on version 3's model (docs/perf/int8_v3.json). Version 2 was quantized with
# Recipe("u8s8-qoperator-minmax", quant_format="QOperator"), chosen before 7-bit recipes competed.
SHIPPED = Recipe("u8s7-qdq-minmax", reduce_range=True)


class _Images:
    """``CalibrationDataReader`` over a uint8 [N, 28, 28] array, 100 images per batch."""

    def __init__(self, images: np.ndarray, batch: int = 100):
        self._batches: Iterator[np.ndarray] = iter(
            [images[i:i + batch] for i in range(0, len(images), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize(fp32_path: Path, out_path: Path, calibration: np.ndarray,
             recipe: Recipe = SHIPPED) -> dict:
    """Write the int8 model of ``fp32_path`` to ``out_path``; returns :func:`summary` of it.

    ``calibration``: uint8 training images [N, 28, 28] (at most the first thousand or so
    are needed). Metadata is copied and a ``quantization`` entry records the recipe.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ExportError("no training images to calibrate the int8 model with")
    with tempfile.TemporaryDirectory(prefix="highway-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference (sympy) is for transformers; ONNX's own suffices here.
        quant_pre_process(str(fp32_path), str(prepared), skip_optimization=True,
                          skip_symbolic_shape=True)
        act = QuantType.QInt8 if recipe.activations == "int8" else QuantType.QUInt8
        try:
            quantize_static(
                str(prepared), str(out_path), _Images(calibration),
                quant_format=getattr(QuantFormat, recipe.quant_format),
                op_types_to_quantize=recipe.op_types(), per_channel=True,
                reduce_range=recipe.reduce_range,
                activation_type=act, weight_type=QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod, recipe.calibration),
                # the gate's outputs stay float: t is what gate_activity averages
                extra_options={} if recipe.all_ops else
                {"OpTypesToExcludeOutputQuantization": [gates.FUNCTION]})
        except (ValueError, RuntimeError) as e:  # ORT's quantizer raises these for bad graphs
            raise ExportError(f"int8 quantization failed: {e}") from None
    model = onnx.load(out_path)
    source = {p.key: p.value for p in onnx.load(fp32_path, load_external_data=False)
              .metadata_props}
    source[METADATA_KEY] = json.dumps({**asdict(recipe), "weights": "int8 per channel",
                                       "calibration_images": int(len(calibration))})
    del model.metadata_props[:]
    for key, value in source.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, out_path)
    return summary(model)


def recipe_of(model: onnx.ModelProto) -> dict | None:
    """The recipe recorded in a quantized model's metadata; None for a float model."""
    value = {p.key: p.value for p in model.metadata_props}.get(METADATA_KEY)
    return json.loads(value) if value else None


def summary(model: onnx.ModelProto) -> dict:
    """What really got quantized: weight ops on int8, gate inputs through Q/DQ, gate bodies."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    int8 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}

    def dequantized(tensor: str) -> bool:
        node = producer.get(tensor)
        return node is not None and node.op_type == "DequantizeLinear"

    def int8_weight(node: onnx.NodeProto) -> bool:
        if node.op_type in ("QLinearConv", "QLinearMatMul"):
            return node.input[3] in int8
        weight = producer.get(node.input[1]) if len(node.input) > 1 else None
        return weight is not None and weight.op_type == "DequantizeLinear" and \
            weight.input[0] in int8

    weighted = [n for n in graph.node if n.op_type in (*WEIGHT_OPS, "QLinearConv",
                                                        "QLinearMatMul", "MatMulInteger")]
    gate_nodes = gates.gate_nodes(model)
    bodies = [[n.op_type for n in f.node] for f in model.functions
              if (f.domain, f.name) == (gates.DOMAIN, gates.FUNCTION)]
    return {
        "weight_ops": len(weighted),
        "weight_ops_int8": sum(int8_weight(n) for n in weighted),
        "gate_nodes": len(gate_nodes),
        "gate_inputs_quantized": sum(dequantized(i) for n in gate_nodes for i in n.input),
        "gate_inputs": sum(len(n.input) for n in gate_nodes),
        "gate_body_ops": bodies[0] if len(bodies) == 1 else bodies,
        "quantize_nodes": sum(n.op_type == "QuantizeLinear" for n in graph.node),
        "dequantize_nodes": sum(n.op_type == "DequantizeLinear" for n in graph.node),
    }


def problems(model: onnx.ModelProto) -> list[str]:
    """What is wrong with a model that claims to be quantized (empty when nothing)."""
    s = summary(model)
    found = []
    if s["weight_ops"] == 0 or s["weight_ops_int8"] != s["weight_ops"]:
        found.append(f"{s['weight_ops_int8']} of {s['weight_ops']} weight ops have int8 weights")
    if tuple(s["gate_body_ops"]) != gates.BODY_OPS:
        found.append(f"the {gates.FUNCTION} body changed: {s['gate_body_ops']}")
    return found
