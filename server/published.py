"""Values a worker computes itself, written into the merged /metrics under ``--workers N``.

With several workers the supervisor serves prometheus_client's multiprocess files
(server/workers.py). A collector that computes at scrape time, or a gauge's
``set_function``, lives in one worker and never reaches those files; so each
worker runs this thread, which every ``period_s`` copies such values into
ordinary multiprocess metrics:

- gate activity (server/gates.py): the new bucket counts since the last copy go
  into a ``Histogram``, so the workers' counts add up as request latencies do;
- gate drift: each worker scores its own window of the images it served; the
  merge shows the worst live worker (``livemax``) and the emptiest window
  (``livemin``: drift is scored once every worker's window is full);
- queue depth: each worker's waiting request parts, summed (``livesum``);
- ModelStatistics counters: not metrics, but a file per worker that the worker
  answering the RPC adds up (server/statistics.py).

A version that is retired keeps its series in the files (prometheus_client
cannot delete one there): its drift and window drop to 0, as ``model_info`` does.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, Histogram

from highway_core import drift
from server import gates as gate_metrics
from server.statistics import PeerFiles

if TYPE_CHECKING:
    from server.batching import Batcher

log = logging.getLogger(__name__)
PERIOD_S = 1.0  # how stale a merged gate or queue value may be (scrapes come every 5-15 s)


class Published:
    """The worker's side; :meth:`start` once its metrics exist, :meth:`stop` at the end."""

    def __init__(self, registry: CollectorRegistry, queued: Gauge,
                 monitor: gate_metrics.GateMonitor | None, peers: PeerFiles | None = None,
                 period_s: float = PERIOD_S):
        self._monitor = monitor
        self._queued_gauge = queued
        self._peers = peers
        self._batchers: dict[tuple[str, str], Batcher] = {}
        self._period = period_s
        self._sent: dict[tuple[str, str], gate_metrics.Snapshot] = {}
        self._lock = threading.Lock()  # publish() from the thread and from stop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="published-metrics",
                                        daemon=True)
        if monitor is None:
            return
        layer = ("model", "version", "layer")
        self._activity = Histogram("highway_gate_activity", gate_metrics.ACTIVITY_HELP, layer,
                                   buckets=gate_metrics.GATE_BUCKETS, registry=registry)
        self._drift = Gauge("highway_gate_drift", gate_metrics.DRIFT_HELP, layer,
                            registry=registry, multiprocess_mode="livemax")
        version = ("model", "version")
        self._score = Gauge("highway_gate_drift_score", gate_metrics.SCORE_HELP, version,
                            registry=registry, multiprocess_mode="livemax")
        self._threshold = Gauge("highway_gate_drift_threshold", gate_metrics.THRESHOLD_HELP,
                                version, registry=registry, multiprocess_mode="livemax")
        self._window = Gauge("highway_gate_drift_window_images", gate_metrics.WINDOW_HELP,
                             version, registry=registry, multiprocess_mode="livemin")

    def track(self, model: str, version: int, batcher: Batcher | None) -> None:
        """Publishes the version's queue depth and statistics; None: the version is gone."""
        key = (model, str(version))
        if batcher is None:
            self._batchers.pop(key, None)
            self._queued_gauge.labels(*key).set(0)
        else:
            self._batchers[key] = batcher

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread after one last copy, so nothing counted is left behind."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.publish()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.publish()
            except Exception:  # a metrics bug must not end the thread, nor the worker
                log.exception("publishing worker metrics failed")

    def publish(self) -> None:
        with self._lock:
            batchers = dict(self._batchers)
            for key, batcher in batchers.items():
                self._queued_gauge.labels(*key).set(batcher.queued())
            if self._peers is not None:
                self._peers.write({(m, int(v)): b.stats for (m, v), b in batchers.items()})
            if self._monitor is not None:
                self._publish_gates()

    def _publish_gates(self) -> None:
        current = {}
        for snap in self._monitor.snapshots():
            key = (snap.model, snap.version)
            current[key] = snap
            before = self._sent.get(key)
            new_counts = snap.counts - (0 if before is None else before.counts)
            new_sums = snap.sums - (0 if before is None else before.sums)
            for i, layer in enumerate(snap.layers):
                _add(self._activity.labels(*key, layer), new_counts[i], float(new_sums[i]))
            self._window.labels(*key).set(snap.window)
            if snap.has_reference:
                self._threshold.labels(*key).set(self._monitor.threshold)
            if snap.scores is not None:
                for layer, value in zip(snap.layers, snap.scores, strict=True):
                    self._drift.labels(*key, layer).set(float(value))
                self._score.labels(*key).set(drift.overall(snap.scores))
        for key, gone in self._sent.items():
            if key not in current:  # retired: a 0 in the merge, like model_info
                self._window.labels(*key).set(0)
                if gone.scores is not None:
                    self._score.labels(*key).set(0)
                    for layer in gone.layers:
                        self._drift.labels(*key, layer).set(0)
        self._sent = current


def _add(child: Histogram, counts: np.ndarray, total: float) -> None:
    """Adds many observations' bucket counts and sum to one histogram child at once.

    prometheus_client has no bulk observe, and ``observe`` per value would cost a
    file write per image and layer. Its Histogram keeps exactly what is added here:
    one non-cumulative count per upper bound (``+Inf`` last) and the sum, which in
    multiprocess mode are values in this worker's file.
    """
    for bucket, count in zip(child._buckets, counts, strict=True):
        if count:
            bucket.inc(int(count))
    if total:
        child._sum.inc(total)
