"""Both sides of the parity check: Keras and ONNX Runtime outputs on the same images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from highway_core.facts import INPUT_NAME, OUTPUT_NAMES

if TYPE_CHECKING:
    import keras

BATCH = 500  # images per Keras call / ORT run: bounded memory for conv nets on 10k images


def keras_outputs(model: keras.Model, x: np.ndarray,
                  log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray]:
    """The Keras side: the model's own probabilities, and the gate means of its gate twin.

    ``log`` gets a progress line every 2,000 images.
    """
    import keras

    from export.convert import gate_model

    gates_twin = gate_model(model)
    # Direct calls, not predict(): predict() builds a tf.function per model and warns
    # about retracing when verification runs several times in one process.
    p, g = [], []
    for start in range(0, len(x), BATCH):
        batch = x[start:start + BATCH]
        p.append(keras.ops.convert_to_numpy(model(batch, training=False)))
        g.append(keras.ops.convert_to_numpy(gates_twin(batch, training=False)["gate_activity"]))
        if (start // BATCH) % 4 == 3:
            log(f"  keras: {start + len(batch):,} of {len(x):,} images")
    return np.concatenate(p).astype(np.float32), np.concatenate(g).astype(np.float32)


def onnx_outputs(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exported model's ``probabilities`` and ``gate_activity`` on ONNX Runtime (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = [session.run(list(OUTPUT_NAMES), {INPUT_NAME: x[i:i + BATCH]})
               for i in range(0, len(x), BATCH)]  # bounded memory for conv nets on 10k images
    return (np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs]))
