"""Triton's ModelStatistics for the whole server, ``--workers N`` included.

A batcher counts what its own process ran (:class:`RunStats`). A
ModelStatistics call reaches one worker, the one its connection landed on, yet a
client (perf_analyzer reads the statistics before and after each measurement)
asks about the server. So each worker also writes its counters, once a second, to
a file of its own in the folder the workers share (server/published.py), and the
worker that answers adds the other workers' files to its own live counters. The
others' counts may lag by up to that second, as the merged /metrics do.

Plain data only: the servicer turns a :data:`Snapshot` into the protocol message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DURATIONS = ("success", "fail", "queue", "infer")  # [count, ns] pairs
COUNTS = ("executions", "images")
Snapshot = dict  # {"success": [count, ns], ..., "executions": n, "images": n, "last_ms": t}


class RunStats:
    """Cumulative counters behind Triton's ModelStatistics RPC (nanoseconds)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.executions = 0
        self.queue = [0, 0]  # [count, ns] per request part
        self.infer = [0, 0]  # [count, ns] per request part, its run's duration
        self.success = [0, 0]  # [count, ns] per request, time in the batcher
        self.fail = [0, 0]
        self.images = 0
        self.last_ms = 0

    def add(self, pair: list[int], seconds: float, count: int = 1) -> None:
        with self.lock:
            pair[0] += count
            pair[1] += int(seconds * 1e9) * count


def snapshot(stats: RunStats) -> Snapshot:
    """One consistent copy of a batcher's counters."""
    with stats.lock:
        return {**{k: list(getattr(stats, k)) for k in DURATIONS},
                **{k: getattr(stats, k) for k in COUNTS}, "last_ms": stats.last_ms}


def total(snapshots: list[Snapshot]) -> Snapshot:
    """The sum of several processes' counters; the latest inference of any of them."""
    out: Snapshot = {**{k: [0, 0] for k in DURATIONS}, **{k: 0 for k in COUNTS}, "last_ms": 0}
    for snap in snapshots:
        for k in DURATIONS:
            out[k] = [out[k][0] + snap[k][0], out[k][1] + snap[k][1]]
        for k in COUNTS:
            out[k] += snap[k]
        out["last_ms"] = max(out["last_ms"], snap["last_ms"])
    return out


class PeerFiles:
    """This worker's statistics file, and the other workers' files, in one folder."""

    def __init__(self, folder: Path, index: int):
        self.folder = folder
        self.index = index
        self._own = folder / f"worker{index}.json"

    def write(self, stats: dict[tuple[str, int], RunStats]) -> None:
        """Replaces this worker's file in one step (a reader never sees half of it)."""
        rows = [{"model": m, "version": v, **snapshot(s)} for (m, v), s in stats.items()]
        self.folder.mkdir(exist_ok=True)
        partial = self._own.with_suffix(".tmp")
        partial.write_text(json.dumps(rows))
        os.replace(partial, self._own)

    def others(self, model: str, version: int) -> list[Snapshot]:
        """The other workers' last written counters for this model version."""
        found = []
        for path in self.folder.glob("worker*.json"):
            if path == self._own:
                continue
            try:
                rows = json.loads(path.read_text())
            except (OSError, ValueError) as e:  # a worker's file is never half-written
                log.warning("statistics of another worker unreadable (%s): %s", path.name, e)
                continue
            found += [r for r in rows if r["model"] == model and r["version"] == version]
        return found
