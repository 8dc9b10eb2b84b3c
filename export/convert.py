"""Load a trained ``.keras`` model, check its interface, convert it to ONNX with tf2onnx.

The converted graph has the contract's interface: input ``images`` uint8
[-1, 28, 28]; outputs ``probabilities`` float32 [-1, 10] and ``gate_activity``
float32 [-1, L]. The gate pass (``export.gates``) runs afterwards.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from export.errors import ExportError
from highway_core.facts import IMAGE_SHAPE, INPUT_NAME, NUM_CLASSES, OUTPUT_NAMES
from highway_core.messages import first_line
from training import model_api

if TYPE_CHECKING:  # keras imports TensorFlow: only when the export actually runs
    import keras

OPSET = 17  # pinned: the oldest opset the contract allows, run by every ORT we ship


def quiet_tensorflow() -> None:
    """Import TensorFlow without its C++ start-up chatter; quiet tf2onnx's INFO lines."""
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    model_api.import_tensorflow()


def load_keras(path: str | os.PathLike[str]) -> keras.Model:
    """Load a trained zoo model, or raise ``ExportError`` saying why it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"model file not found: {path}")
    if not os.access(path, os.R_OK):
        raise ExportError(f"model file not readable: {path}")
    if not zipfile.is_zipfile(path):
        raise ExportError(f"not a Keras model file (expected a .keras archive): {path}")
    quiet_tensorflow()
    try:
        model = model_api.load_model(str(path))
    except Exception as e:  # Keras raises many types for a bad archive; all mean the same here
        raise ExportError(f"not a loadable Keras model: {path} ({first_line(e)})") from None
    check_interface(model, path)
    return model


def check_interface(model: keras.Model, path: Path | str) -> None:
    """Refuse models whose input or output differs from the contract (before converting)."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ExportError(f"{path}: expected one input, found {len(inputs)}")
    shape = tuple(inputs[0].shape)
    dtype = str(inputs[0].dtype)
    if shape[1:] != IMAGE_SHAPE or dtype != "uint8":
        raise ExportError(
            f"{path}: unexpected input {dtype} {list(shape)}; expected uint8 [N, 28, 28] "
            "raw pixels (train it with highway-train)"
        )
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or tuple(outputs[0].shape)[1:] != (NUM_CLASSES,):
        got = [list(o.shape) for o in outputs]
        raise ExportError(f"{path}: expected one output [N, {NUM_CLASSES}], found {got}")


def gate_model(model: keras.Model) -> keras.Model:
    """The two-output Keras model (``probabilities``, ``gate_activity``) sharing ``model``'s
    weights; ``ExportError`` for models the zoo's gate tracing cannot handle."""
    try:
        return model_api.with_gate_activity(model)
    except ValueError as e:
        raise ExportError(f"cannot export {model.name!r}: {e}") from None


def to_onnx(model: keras.Model, opset: int = OPSET) -> onnx.ModelProto:
    """Convert the Keras model (with its gate outputs) to ONNX with a dynamic batch."""
    quiet_tensorflow()
    import tensorflow as tf
    import tf2onnx

    gates = gate_model(model)
    spec = (tf.TensorSpec([None, *IMAGE_SHAPE], tf.uint8, name=INPUT_NAME),)

    # A tf.function returning a dict: tf2onnx names the graph outputs after its keys.
    @tf.function(input_signature=spec)
    def serve(images):
        out = gates(images, training=False)
        return {name: out[name] for name in OUTPUT_NAMES}

    try:
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset)
    except Exception as e:  # tf2onnx reports unsupported graphs with assorted exception types
        raise ExportError(f"tf2onnx could not convert {model.name!r}: {e}") from None
    names = sorted(o.name for o in proto.graph.output)
    if names != sorted(OUTPUT_NAMES) or [i.name for i in proto.graph.input] != [INPUT_NAME]:
        raise ExportError(f"converted graph has unexpected inputs/outputs: {names}")
    return proto
