"""Gate drift: how far recent images' gate activity is from the model's reference.

Each highway layer reports, per image, its mean transform-gate value T. The
export records, on the verification images, where those values fall
(``gate_reference.json`` beside ``model.onnx``, named by the ONNX metadata key
``gate_reference``). A window of recent images is then compared with it layer
by layer with the population stability index (PSI):

    PSI = sum_i (w_i - r_i) * ln(w_i / r_i)

over the reference's decile bins (r_i ~ 0.1; w_i the window's share). PSI is
scale-free (the layers' gate ranges differ tenfold in width), bounded for a
fixed bin count, cheap (one searchsorted per layer), and has conventional
readings (< 0.1 stable, > 0.25 shifted). Its sampling noise is about
(bins - 1) / window for an unshifted window, which is what sets the default
window size. The overall score is the largest layer's PSI: a shift one layer
sees must not be averaged away by seven that do not.

No TensorFlow, no gRPC: the server and the drift experiment both use this.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILENAME = "gate_reference.json"
METADATA_KEY = "gate_reference"  # ONNX metadata_props key naming the file in the version folder
BINS = 10
FLOOR = 1e-4  # share given to an empty bin, so that ln() stays finite (standard PSI practice)


class ReferenceError(ValueError):
    """A gate reference file that is missing, unreadable or does not fit the model."""


@dataclass(frozen=True)
class LayerReference:
    """One layer's reference: interior bin edges and the reference share in each bin."""

    name: str
    edges: np.ndarray  # [bins - 1], ascending
    shares: np.ndarray  # [bins], sums to 1
    mean: float
    std: float

    def psi(self, values: np.ndarray) -> float:
        """PSI of ``values`` (one layer's gate activity for a window of images)."""
        counts = np.bincount(np.searchsorted(self.edges, values, side="right"),
                             minlength=len(self.shares))
        window = np.maximum(counts / max(len(values), 1), FLOOR)
        ref = np.maximum(self.shares, FLOOR)
        return float(np.sum((window - ref) * np.log(window / ref)))


@dataclass(frozen=True)
class GateReference:
    """Every layer's reference, in the order of the model's ``gate_activity`` output."""

    layers: list[LayerReference]
    images: int
    source: str

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def scores(self, window: np.ndarray) -> np.ndarray:
        """Per-layer PSI of a window [W, L] of gate activity."""
        return np.array([layer.psi(window[:, i]) for i, layer in enumerate(self.layers)])

    def to_dict(self) -> dict:
        return {
            "metric": "population stability index over reference deciles",
            "images": self.images, "source": self.source, "bins": len(self.layers[0].shares),
            "layers": [{"name": r.name, "edges": [float(e) for e in r.edges],
                        "shares": [float(s) for s in r.shares],
                        "mean": r.mean, "std": r.std} for r in self.layers],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")


def overall(scores: np.ndarray) -> float:
    """The model's drift score: its most-shifted layer."""
    return float(np.max(scores)) if len(scores) else 0.0


def build(gates: np.ndarray, names: list[str], source: str, bins: int = BINS) -> GateReference:
    """The reference of ``gates`` [N, L] (N images, L layers named ``names``)."""
    gates = np.asarray(gates, dtype=np.float64)
    if gates.ndim != 2 or gates.shape[1] != len(names) or len(gates) < bins:
        raise ReferenceError(f"gate activity {gates.shape} does not fit {len(names)} layers "
                             f"and at least {bins} images")
    layers = []
    for i, name in enumerate(names):
        column = gates[:, i]
        edges = np.unique(np.quantile(column, np.arange(1, bins) / bins))
        counts = np.bincount(np.searchsorted(edges, column, side="right"),
                             minlength=len(edges) + 1)
        layers.append(LayerReference(name, edges, counts / len(column),
                                     float(column.mean()), float(column.std())))
    return GateReference(layers, len(gates), source)


def read(path: Path, names: list[str] | None = None) -> GateReference:
    """Reads a reference file; ReferenceError (one line) if broken or for other layers."""
    try:
        raw = json.loads(path.read_text())
        layers = [LayerReference(str(r["name"]), np.asarray(r["edges"], dtype=np.float64),
                                 np.asarray(r["shares"], dtype=np.float64),
                                 float(r["mean"]), float(r["std"])) for r in raw["layers"]]
        reference = GateReference(layers, int(raw["images"]), str(raw.get("source", "")))
    except OSError as e:
        raise ReferenceError(f"{path}: cannot read: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ReferenceError(f"{path}: not a gate reference: {e}") from None
    for layer in layers:
        if (len(layer.shares) != len(layer.edges) + 1 or np.any(np.diff(layer.edges) <= 0)
                or not math.isclose(float(layer.shares.sum()), 1.0, abs_tol=1e-6)):
            raise ReferenceError(f"{path}: layer {layer.name!r} has inconsistent bins")
    if names is not None and reference.names != list(names):
        raise ReferenceError(f"{path}: layers {reference.names} differ from the model's "
                             f"{list(names)}")
    return reference


class Window:
    """The last ``size`` images' gate activity: a ring buffer, filled and read across threads."""

    def __init__(self, size: int, layers: int):
        self._rows = np.zeros((size, layers), dtype=np.float32)
        self._next = 0
        self._count = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._rows)

    def __len__(self) -> int:
        return self._count

    def add(self, gates: np.ndarray) -> None:
        """Appends [n, L] rows, dropping the oldest beyond ``size``."""
        size = len(self._rows)
        gates = gates[-size:]
        n = len(gates)
        with self._lock:
            end = self._next + n
            if end <= size:
                self._rows[self._next:end] = gates
            else:
                split = size - self._next
                self._rows[self._next:] = gates[:split]
                self._rows[:n - split] = gates[split:]
            self._next = end % size
            self._count = min(self._count + n, size)

    def snapshot(self) -> np.ndarray:
        """A copy of the rows held now (order does not matter to PSI)."""
        with self._lock:
            return self._rows[:self._count].copy()
