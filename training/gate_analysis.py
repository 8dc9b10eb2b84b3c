"""What a trained highway fc net does with its gates (paper Figures 2 and 4).

``gates``  reads the transform-gate biases, the mean gate output T over training
           images (as the paper averages) and over the test set (per layer through
           ``models.with_gate_activity``, per unit through a layer-by-layer pass), and
           one test image's gates and block outputs.
``lesion`` shuts one layer's gates at a time (T = 0: the layer copies its input)
           on a copy of the network and measures the error, for every layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from training import models
from training.data import Mnist
from training.layers import is_highway

LESION_BIAS = -1e4  # sigmoid(-1e4) is exactly 0 in float32: a pure carry
BATCH = 2000


def load(path: Path) -> keras.Model:
    """Load a highway network saved by the depth experiment, with a one-line error if absent."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such model; run `python -m training.experiments depth` "
                         "first, or pass --model")
    model = keras.models.load_model(path, compile=False)
    if not models.highway_layers(model):
        raise ValueError(f"{path}: {model.name} has no highway layers to analyse")
    return model


def _round(array: np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def trace(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray],
                                                       list[np.ndarray]]:
    """Run ``x`` layer by layer: probabilities, and each highway layer's T and output."""
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probabilities, gates, outputs = [], [], []
    for start in range(0, len(x), BATCH):
        h = x[start:start + BATCH]
        batch_gates, batch_outputs = [], []
        for layer in chain:
            if is_highway(layer):
                h, t = layer(h, return_gate=True)
                batch_gates.append(keras.ops.convert_to_numpy(t))
                batch_outputs.append(keras.ops.convert_to_numpy(h))
            else:
                h = layer(h)
        probabilities.append(keras.ops.convert_to_numpy(h))
        gates.append(batch_gates)
        outputs.append(batch_outputs)
    stack = [np.concatenate(parts) for parts in zip(*gates, strict=True)]
    stacked_outputs = [np.concatenate(parts) for parts in zip(*outputs, strict=True)]
    return np.concatenate(probabilities), stack, stacked_outputs


def gates(model: keras.Model, data: Mnist, x_train: np.ndarray, example: int = 0) -> dict:
    """The numbers behind paper Figure 2: over ``x_train`` (training images, as the paper),
    over the test set beside them, and for test image ``example``."""
    if not 0 <= example < len(data.x_test):
        raise ValueError(f"--example must be in 0..{len(data.x_test) - 1}, got {example}")
    layers = models.highway_layers(model)
    bias = np.stack([keras.ops.convert_to_numpy(layer.gate_bias) for layer in layers])
    probe = models.with_gate_activity(model)
    activity = probe.predict(data.x_test, batch_size=BATCH, verbose=0)["gate_activity"]
    probabilities, gate_maps, outputs = trace(model, data.x_test)
    mean_units = np.stack([t.mean(axis=0) for t in gate_maps])
    # Two routes to the same per-layer mean; a mismatch would mean one of them is wrong.
    mismatch = float(np.abs(mean_units.mean(axis=1) - activity.mean(axis=0)).max())
    if mismatch > 1e-3:
        raise ValueError(f"gate means disagree between the two passes by {mismatch:.2g}")
    one_gate = np.stack([t[example] for t in gate_maps])
    train_units = np.stack([t.mean(axis=0) for t in trace(model, x_train)[1]])
    predictions = probabilities.argmax(axis=1)
    return {
        "title": f"{model.name}: {len(layers)} highway layers of {bias.shape[1]} units; "
                 f"test image {example}",
        "layers": [layer.name for layer in layers],
        "gate_bias_init": float(layers[0].gate_bias_init),
        "gate_bias_mean": _round(bias.mean(axis=1)),
        "gate_bias": _round(bias, 3),
        "mean_gate": _round(activity.mean(axis=0)),
        "mean_gate_units": _round(mean_units, 3),
        "mean_gate_train": _round(train_units.mean(axis=1)),
        "mean_gate_units_train": _round(train_units, 3),
        "train_images": int(len(x_train)),
        "test_accuracy": float((predictions == data.y_test).mean()),
        "test_images": int(len(data.x_test)),
        "summary": {
            "mean_gate_bias": float(bias.mean()),
            "share_of_biases_below_init": float((bias < layers[0].gate_bias_init).mean()),
            "mean_gate_test_set": float(activity.mean()),
            "mean_gate_train_set": float(train_units.mean()),
            "mean_gate_example": float(one_gate.mean()),
            "share_open_mean": float((mean_units > 0.5).mean()),  # T > 0.5 on average
            "share_open_mean_train": float((train_units > 0.5).mean()),
            "share_open_example": float((one_gate > 0.5).mean()),  # T > 0.5 for one image
        },
        "example": {
            "index": example, "label": int(data.y_test[example]),
            "predicted": int(predictions[example]),
            "gate": _round(one_gate, 3),
            "output": _round(np.stack([o[example] for o in outputs]), 3),
        },
    }


@contextmanager
def shut_gates(layer: keras.layers.Layer) -> Iterator[None]:
    """Force ``layer``'s transform gate to 0 (zero gate kernel, bias -1e4) until the block ends."""
    kernel = keras.ops.convert_to_numpy(layer.gate_kernel)
    bias = keras.ops.convert_to_numpy(layer.gate_bias)
    layer.gate_kernel.assign(np.zeros_like(kernel))
    layer.gate_bias.assign(np.full_like(bias, LESION_BIAS))
    try:
        yield
    finally:
        layer.gate_kernel.assign(kernel)
        layer.gate_bias.assign(bias)


def _error(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predictions = model.predict(x, batch_size=BATCH, verbose=0).argmax(axis=1)
    return float((predictions != y).mean())


def lesion(model: keras.Model, x_test: np.ndarray, y_test: np.ndarray,
           x_train: np.ndarray, y_train: np.ndarray) -> dict:
    """Error on test and training images with each highway layer's gates forced to 0 in turn.

    Works on a copy, so ``model`` is left as it was; each lesion is undone before the next.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    rows = []
    baseline = {"test_error": _error(copy, x_test, y_test),
                "train_error": _error(copy, x_train, y_train)}
    for index, layer in enumerate(models.highway_layers(copy), start=1):
        with shut_gates(layer):
            rows.append({"index": index, "layer": layer.name,
                         "test_error": _error(copy, x_test, y_test),
                         "train_error": _error(copy, x_train, y_train)})
        print(f"lesion {index}: {layer.name} test error {100 * rows[-1]['test_error']:.2f}% "
              f"(baseline {100 * baseline['test_error']:.2f}%)", flush=True)
    return {
        "title": f"{model.name}: one layer's gates shut at a time",
        "baseline_test_error": baseline["test_error"],
        "baseline_train_error": baseline["train_error"],
        "test_images": int(len(x_test)),
        "train_images": int(len(x_train)),
        "lesion_gate_bias": LESION_BIAS,
        "layers": rows,
    }
