"""The model's contract and the repository's conventions: one home for each.

An exported model takes raw pixels and does its own scaling, so every part
speaks of the same tensors: ``images`` uint8 [N, 28, 28] in, ``probabilities``
float32 [N, 10] and ``gate_activity`` float32 [N, highway layers] out.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "highway_mnist"
"""The name the shipped model repository and every default use."""

INPUT_NAME = "images"
ROWS = COLS = 28
IMAGE_SHAPE = (ROWS, COLS)
NUM_CLASSES = 10
PROBABILITIES = "probabilities"
GATE_ACTIVITY = "gate_activity"
OUTPUT_NAMES = (PROBABILITIES, GATE_ACTIVITY)

DEFAULT_MAX_BATCH_SIZE = 64
"""Most images in one ONNX Runtime run, unless ``--max-batch-size`` says otherwise.

The export also writes it into config.pbtxt (for Triton); our server reads its
batching from its own settings only and checks the config's value is at least 1.
"""
DEFAULT_QUEUE_DELAY_US = 500
"""Longest wait for more requests to join a batch, in microseconds (``--max-queue-delay-us``;
config.pbtxt's ``dynamic_batching`` gets the same number, which only Triton reads)."""

MODEL_FILENAME = "model.onnx"

SHIPPED_FP32_VERSION = 3
"""The shipped repository's trained model (Table 1 recipe v2, seed 2), with its model.keras.

Its int8 twin is the next version, the highest, which a request without a version gets.
The tools' defaults (drift study, int8 study) and the tests read the shipped model here.
"""
SHIPPED_INT8_VERSION = SHIPPED_FP32_VERSION + 1


def shipped_model(version: int = SHIPPED_FP32_VERSION) -> Path:
    """``models/highway_mnist/<version>/model.onnx``, relative to the checkout's root."""
    return Path("models", MODEL_NAME, str(version), MODEL_FILENAME)


def version_folders(model_dir: Path) -> list[int]:
    """A model folder's versions, ascending: its sub-folders named by a positive integer.

    This is Triton's layout (``<model>/<N>/model.onnx``); "latest" is the highest N.
    Folders like ``1.tmp`` or ``0`` are not versions, which is what lets a new
    version be written elsewhere and renamed into place.
    """
    return sorted(int(p.name) for p in model_dir.iterdir()
                  if p.is_dir() and p.name.isdigit() and int(p.name) > 0)
