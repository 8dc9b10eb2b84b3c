"""The ceiling: ONNX Runtime in-process, with the session options the server uses.

The session comes from :func:`server.runtime.create_session`, so threads, spinning
and graph optimisation are exactly the server's. Each measurement is split into
short slices; the bench measures before and after the server runs and reports
the median slice, because raw throughput on a shared machine drifts between runs.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from server.runtime import create_session


@dataclass
class RawResult:
    """Raw ORT figures for one batch size, gathered over every slice."""

    batch: int
    slices_ips: list[float] = field(default_factory=list)
    """Images/s of each slice, in the order measured."""
    latencies: list[float] = field(default_factory=list)
    """Seconds per ``run`` call, every call of every slice."""
    cpu_s: float = 0.0
    """Process CPU seconds (all threads) spent in the slices."""
    images: int = 0
    """Images run in the slices."""

    @property
    def median_ips(self) -> float:
        return statistics.median(self.slices_ips) if self.slices_ips else 0.0

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies, 50) * 1e3) if self.latencies else 0.0

    def summary(self) -> dict:
        """JSON-ready figures."""
        return {"batch": self.batch, "median_images_per_s": self.median_ips,
                "min_images_per_s": min(self.slices_ips, default=0.0),
                "max_images_per_s": max(self.slices_ips, default=0.0),
                "p50_ms": self.p50_ms,
                "cpu_us_per_image": self.cpu_s * 1e6 / self.images if self.images else None,
                "p90_ms": float(np.percentile(self.latencies, 90) * 1e3) if self.latencies
                else 0.0,
                "slices_images_per_s": [round(x, 1) for x in self.slices_ips]}


class RawBench:
    """One session over the model file; :meth:`measure` adds slices to ``results``."""

    def __init__(self, model_path: Path, device: str, intra_op_threads: int,
                 batches: tuple[int, ...], images: np.ndarray):
        self.session = create_session(model_path, device, intra_op_threads)
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.inputs = {b: np.ascontiguousarray(np.resize(images, (b, *images.shape[1:])))
                       for b in batches}
        self.results = {b: RawResult(b) for b in batches}

    def _slice(self, batch: int, seconds: float) -> None:
        feed = {self.input_name: self.inputs[batch]}
        run = self.session.run
        result = self.results[batch]
        calls = 0
        cpu = time.process_time()
        begin = time.perf_counter()
        stop = begin + seconds
        now = begin
        while now < stop or calls == 0:
            run(self.output_names, feed)
            t = time.perf_counter()
            result.latencies.append(t - now)
            now = t
            calls += 1
        result.slices_ips.append(calls * batch / (now - begin))
        result.cpu_s += time.process_time() - cpu
        result.images += calls * batch

    def measure(self, seconds_per_batch: float, slices: int, log=print) -> None:
        """Warms each batch size, then measures it in ``slices`` slices (interleaved)."""
        for batch in self.results:
            for _ in range(3):
                self.session.run(self.output_names, {self.input_name: self.inputs[batch]})
        for i in range(slices):
            for batch in self.results:
                self._slice(batch, seconds_per_batch / slices)
            log(f"raw ORT slice {i + 1}/{slices}: " + ", ".join(
                f"b{b} {r.slices_ips[-1]:,.0f} img/s" for b, r in self.results.items()))

    def close(self) -> None:
        """Drops the session (its thread pool stops)."""
        del self.session
