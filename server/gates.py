"""Gate-aware metrics: each highway layer's gate activity as a histogram, and its drift.

The model returns ``gate_activity`` [N, L] (each image's mean transform-gate value
per highway layer) on every run anyway, and every image is counted. The batcher's
worker only appends each run's array to a list (about a microsecond: the worker
is on every request's path); the scrape folds what accumulated into the bucket
counts with one ``searchsorted`` + ``bincount`` and into the sliding window, and
recomputes drift (``highway_core.drift``) at most once per ``drift_interval_s``.
Without scrapes the worker folds itself every ``FOLD_ROWS`` images, so memory
stays bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from highway_core import drift
from highway_core.facts import GATE_ACTIVITY

log = logging.getLogger(__name__)

# The shipped model's layers keep their per-image gate means between 0.29 and 0.60 on
# real MNIST (version 3's gate_reference.json; version 1's: 0.30-0.56): 0.01-wide buckets
# there, coarse ones elsewhere, so both the normal range and a shift out of it are visible.
GATE_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25,
                *(round(0.28 + 0.01 * i, 2) for i in range(33)),  # 0.28 .. 0.60
                0.65, 0.7, 0.8, 0.9, 1.0)
FOLD_ROWS = 20_000  # images kept unfolded at most (~0.6 MB for 8 layers)

ACTIVITY_HELP = "Per image, the mean transform-gate value T of one highway layer."
DRIFT_HELP = "PSI of the recent window's gate activity vs the reference."
SCORE_HELP = "Gate drift of the model: its largest layer PSI."
THRESHOLD_HELP = "Drift score above which the model counts as drifted (--drift-threshold)."
WINDOW_HELP = "Images in the drift window now."


@dataclass(frozen=True)
class Snapshot:
    """One watched version's gate numbers at one moment (bucket counts not cumulative)."""

    model: str
    version: str
    layers: list[str]
    counts: np.ndarray  # [L, buckets + 1]
    sums: np.ndarray  # [L]
    window: int  # images in the drift window
    has_reference: bool
    scores: np.ndarray | None  # per-layer drift; None without a reference or a full window


@dataclass
class _Model:
    """What is kept for one model version."""

    model: str
    version: str
    layers: list[str]
    reference: drift.GateReference | None
    window: drift.Window
    counts: np.ndarray  # [L, buckets + 1] per bucket (last: above 1.0), not cumulative
    sums: np.ndarray  # [L]
    lock: threading.Lock = field(default_factory=threading.Lock)  # pending list
    fold_lock: threading.Lock = field(default_factory=threading.Lock)  # counts, window order
    pending: list[np.ndarray] = field(default_factory=list)
    pending_rows: int = 0
    scores: np.ndarray | None = None  # per-layer drift, from the last update
    updated: float = -np.inf
    alarmed: bool = False


class GateMonitor(Collector):
    """Holds gate statistics per model version; register once on the metrics registry."""

    def __init__(self, window: int, interval_s: float, threshold: float):
        self._window = window
        self._interval = interval_s
        self._threshold = threshold
        self._edges = np.asarray(GATE_BUCKETS, dtype=np.float32)
        self._models: dict[tuple[str, int], _Model] = {}

    def add(self, model: str, version: int, layers: list[str],
            reference: drift.GateReference | None) -> None:
        """Starts watching a model version whose ``gate_activity`` columns are ``layers``."""
        self._models[(model, version)] = _Model(
            model, str(version), layers, reference, drift.Window(self._window, len(layers)),
            np.zeros((len(layers), len(self._edges) + 1), dtype=np.int64),
            np.zeros(len(layers)))

    def remove(self, model: str, version: int) -> None:
        """Stops exporting a retired version's series."""
        self._models.pop((model, version), None)

    def observer(self, model: str, version: int):
        """The callback the batcher calls with each run's outputs."""
        state = self._models[(model, version)]

        def observe(outputs: dict[str, np.ndarray]) -> None:
            gates = outputs[GATE_ACTIVITY]
            with state.lock:
                state.pending.append(gates)
                state.pending_rows += len(gates)
                full = state.pending_rows >= FOLD_ROWS
            if full:
                self._fold(state)

        return observe

    def _fold(self, state: _Model) -> None:
        """Adds the pending runs' gate values to the bucket counts and the window."""
        with state.fold_lock:
            with state.lock:
                pending, state.pending, state.pending_rows = state.pending, [], 0
            if not pending:
                return
            gates = pending[0] if len(pending) == 1 else np.concatenate(pending)
            # Bucket index per value, offset by layer, so one bincount fills every layer.
            width = state.counts.shape[1]
            index = np.searchsorted(self._edges, gates, side="left")
            index += np.arange(gates.shape[1]) * width
            counts = np.bincount(index.ravel(), minlength=state.counts.size)
            state.counts += counts.reshape(state.counts.shape)
            state.sums += gates.sum(axis=0, dtype=np.float64)
            state.window.add(gates)

    def _drift(self, state: _Model) -> np.ndarray | None:
        """Per-layer drift, recomputed when stale; None until the window is full."""
        if state.reference is None or len(state.window) < state.window.size:
            return None
        now = time.monotonic()
        if now - state.updated >= self._interval:
            state.scores = state.reference.scores(state.window.snapshot())
            state.updated = now
            score = drift.overall(state.scores)
            if (score > self._threshold) != state.alarmed:
                state.alarmed = not state.alarmed
                log.warning("gate drift of %s version %s is %.3f, %s the threshold %.3f",
                            state.model, state.version, score,
                            "over" if state.alarmed else "back under", self._threshold)
        return state.scores

    @property
    def threshold(self) -> float:
        return self._threshold

    def snapshots(self) -> Iterator[Snapshot]:
        """Folds what is pending and yields each watched version's numbers as of now."""
        for state in list(self._models.values()):
            self._fold(state)
            with state.fold_lock:
                counts, sums = state.counts.copy(), state.sums.copy()
            yield Snapshot(state.model, state.version, state.layers, counts, sums,
                           len(state.window), state.reference is not None,
                           None if state.reference is None else self._drift(state))

    def collect(self):
        activity = HistogramMetricFamily(
            "highway_gate_activity", ACTIVITY_HELP, labels=("model", "version", "layer"))
        per_layer = GaugeMetricFamily(
            "highway_gate_drift", DRIFT_HELP, labels=("model", "version", "layer"))
        score = GaugeMetricFamily(
            "highway_gate_drift_score", SCORE_HELP, labels=("model", "version"))
        threshold = GaugeMetricFamily(
            "highway_gate_drift_threshold", THRESHOLD_HELP, labels=("model", "version"))
        window = GaugeMetricFamily(
            "highway_gate_drift_window_images", WINDOW_HELP, labels=("model", "version"))
        for snap in self.snapshots():
            for i, layer in enumerate(snap.layers):
                cumulative = np.cumsum(snap.counts[i])
                buckets = [(_le(edge), int(c)) for edge, c in zip(self._edges, cumulative,
                                                                  strict=False)]
                buckets.append(("+Inf", int(cumulative[-1])))
                activity.add_metric([snap.model, snap.version, layer], buckets,
                                    float(snap.sums[i]))
            labels = [snap.model, snap.version]
            window.add_metric(labels, snap.window)
            if not snap.has_reference:
                continue
            threshold.add_metric(labels, self._threshold)
            if snap.scores is not None:
                for layer, value in zip(snap.layers, snap.scores, strict=True):
                    per_layer.add_metric([*labels, layer], float(value))
                score.add_metric(labels, drift.overall(snap.scores))
        yield from (activity, per_layer, score, threshold, window)


def _le(edge: float) -> str:
    return repr(round(float(edge), 2))
