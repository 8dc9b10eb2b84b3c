"""What a model version is wired to while it serves, and unwired from when it retires.

Bringing a version up loads its session, warms it, gives it a batcher and connects
that batcher to the gate monitor and the metrics; taking it down undoes each of
those. Kept apart from :mod:`server.registry`, which decides *which* versions serve
and *when* traffic moves; this module only knows *how* one version is set up.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from highway_core.facts import GATE_ACTIVITY
from server import model_config, repository
from server.batching import Batcher
from server.repository import ModelVersion

if TYPE_CHECKING:
    from server.gates import GateMonitor
    from server.metrics import Metrics
    from server.published import Published
    from server.settings import Settings

log = logging.getLogger(__name__)


class VersionSetup:
    """Brings versions up (in a worker thread) and takes them down (on the loop)."""

    def __init__(self, settings: Settings, metrics: Metrics, gates: GateMonitor | None,
                 published: Published | None):
        self._settings = settings
        self._metrics = metrics
        self._gates = gates  # gate activity and drift per version (server/gates.py)
        self._published = published  # under --workers: values copied into the shared files

    def bring_up(self, model_dir: Path, plan: model_config.ModelPlan,
                 version: int) -> ModelVersion:
        """In a worker thread: session, checks, warm-up, batcher; metrics on success."""
        s = self._settings
        start = time.perf_counter()
        mv = repository.load_version(model_dir, plan.config, version, s.device,
                                     s.intra_op_threads)
        mv.runtime.warm_up(plan.batch.max_batch_size)
        mv.batch = plan.batch
        observer = None
        if self._gates is not None and mv.highway_layers and (
                GATE_ACTIVITY in mv.runtime.output_names):
            self._gates.add(mv.name, version, mv.highway_layers, mv.gate_reference)
            observer = self._gates.observer(mv.name, version)
        mv.batcher = Batcher(mv.runtime.run, plan.batch, self._metrics,
                             name=f"{mv.name}-{version}", observer=observer)
        if self._published is not None:  # a set_function cannot reach a worker's files
            self._published.track(mv.name, version, mv.batcher)
        else:
            self._metrics.queued.labels(mv.name, str(version)).set_function(mv.batcher.queued)
        labels = {"model": mv.name, "version": str(version)}
        self._metrics.model_load_duration.labels(**labels).observe(time.perf_counter() - start)
        self._metrics.model_loads.labels(**labels, outcome="success").inc()
        log.info("model %s version %d loaded on %s in %.2f s (max_batch_size %d)", mv.name,
                 version, mv.runtime.provider, time.perf_counter() - start,
                 plan.batch.max_batch_size)
        return mv

    def serving(self, versions: list[ModelVersion]) -> None:
        """Marks them as serving in ``highway_model_info``."""
        for mv in versions:
            self._metrics.model_info.labels(mv.name, str(mv.version), mv.runtime.provider).set(1)

    def take_down(self, versions: list[ModelVersion]) -> None:
        """Drops their ``highway_model_info``, queue and gate series.

        Under ``--workers N`` a series lives on in the worker's metric file after
        ``remove``, so it is set to 0 first: gone from this process, 0 in the merge.
        Their batchers are closed by the caller, off the loop.
        """
        for mv in versions:
            labels = (mv.name, str(mv.version), mv.runtime.provider)
            self._metrics.model_info.labels(*labels).set(0)
            self._metrics.model_info.remove(*labels)
            if self._published is not None:
                self._published.track(mv.name, mv.version, None)
            else:
                try:
                    self._metrics.queued.remove(mv.name, str(mv.version))
                except KeyError:
                    pass
            if self._gates is not None:
                self._gates.remove(mv.name, mv.version)

    def failed(self, name: str, version: int, reason: str, quiet: bool) -> None:
        """Counts a failed load, and logs it unless the caller reports it itself."""
        self._metrics.model_loads.labels(name, str(version), "failure").inc()
        if not quiet:
            log.warning("model %s version %d failed to load: %s", name, version, reason)
