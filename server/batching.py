"""Dynamic batching: concurrent requests share one model run; each fails alone.

Requests (asyncio side) put their images on a bounded queue and await futures;
one worker thread takes what is queued, runs the model once, and resolves each
request's future with its slice of the outputs. The model never knows.

Adaptive waiting: a request that finds nobody else queued runs at once (no
queue delay at concurrency 1); only when several requests are already in the
batch does the worker wait, up to ``max_queue_delay_us`` after the oldest
arrived, for more to join, unless the batch already has one of the preferred sizes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from highway_core.facts import DEFAULT_MAX_BATCH_SIZE, DEFAULT_QUEUE_DELAY_US
from server.errors import Overloaded, Unavailable
from server.metrics import Metrics
from server.statistics import RunStats

log = logging.getLogger(__name__)

Model = Callable[[np.ndarray], dict[str, np.ndarray]]
Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchSettings:
    """How requests are merged into model runs."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    """Most images per model run."""
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    """Longest wait after the oldest queued request for more to join (when several wait)."""
    max_queue: int = 1024
    """Most queued (not yet running) request parts; past it: Overloaded."""
    preferred_batch_sizes: tuple[int, ...] = ()
    """Batch sizes run as soon as they are reached, without waiting out the delay (Triton's
    ``preferred_batch_size``)."""


class _Item:
    __slots__ = ("images", "future", "loop", "enqueued")

    def __init__(self, images: np.ndarray, future: asyncio.Future, loop: asyncio.AbstractEventLoop):
        self.images = images
        self.future = future
        self.loop = loop
        self.enqueued = time.perf_counter()


def _resolve(pairs: list[tuple[asyncio.Future, Outputs | None, BaseException | None]]) -> None:
    """Runs on the event loop: hands each request its result or its own error."""
    for future, result, error in pairs:
        if future.done():  # cancelled by the client meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class Batcher:
    """Merges concurrent ``infer`` calls into runs of ``model`` on one worker thread."""

    def __init__(self, model: Model, settings: BatchSettings, metrics: Metrics | None = None,
                 name: str = "batcher", observer: Callable[[Outputs], None] | None = None):
        self._model = model
        self._observer = observer  # sees every run's outputs (gate metrics), after timing
        self._settings = settings
        self._metrics = metrics
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._results: dict[asyncio.AbstractEventLoop, list] = {}  # awaiting their loop
        self._results_lock = threading.Lock()
        self.stats = RunStats()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    async def infer(self, images: np.ndarray) -> Outputs:
        """Classifies ``images`` [N, ...] (N ≥ 1), split into runs of at most max_batch_size."""
        start = time.perf_counter()
        try:
            outputs = await self._infer(images)
        except BaseException:
            self.stats.add(self.stats.fail, time.perf_counter() - start)
            raise
        self.stats.add(self.stats.success, time.perf_counter() - start)
        with self.stats.lock:
            self.stats.images += len(images)
            self.stats.last_ms = int(time.time() * 1000)
        return outputs

    async def _infer(self, images: np.ndarray) -> Outputs:
        step = self._settings.max_batch_size
        loop = asyncio.get_running_loop()
        items = [_Item(images[i:i + step], loop.create_future(), loop)
                 for i in range(0, len(images), step)]
        with self._cond:
            if self._closed:
                raise Unavailable("the server is shutting down")
            # The bound counts request parts; a request larger than the whole bound
            # is still taken when nothing else waits, so it is never refused forever.
            if self._queue and len(self._queue) + len(items) > self._settings.max_queue:
                raise Overloaded(f"the request queue is full ({self._settings.max_queue} waiting);"
                                 " retry later")
            self._queue.extend(items)
            self._cond.notify()
        if len(items) == 1:
            return await items[0].future
        try:
            parts = await asyncio.gather(*(item.future for item in items))
        except BaseException:
            for item in items:  # one part failed: drop the others' queued work
                item.future.cancel()
            raise
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def queued(self) -> int:
        """Request parts waiting for the model now."""
        return len(self._queue)

    def close(self, timeout: float | None = None) -> None:
        """Refuses new work, finishes what is queued, stops the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[_Item] | None:
        """Blocks for the next batch; None once closed and drained."""
        limit = self._settings.max_batch_size
        delay = self._settings.max_queue_delay_us / 1e6
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            batch: list[_Item] = []
            total = 0
            while True:
                while self._queue and total + len(self._queue[0].images) <= limit:
                    item = self._queue.popleft()
                    if item.future.cancelled():  # the client gave up: drop its work
                        continue
                    batch.append(item)
                    total += len(item.images)
                full = (total >= limit or (self._queue and total > 0)
                        or total in self._settings.preferred_batch_sizes)
                # Wait for company only when there is evidence of concurrency.
                if full or len(batch) < 2 or delay <= 0 or self._closed:
                    break
                remaining = batch[0].enqueued + delay - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            started = time.perf_counter()
            for item in batch:
                self.stats.add(self.stats.queue, started - item.enqueued)
                if self._metrics is not None:
                    self._metrics.queue_duration.observe(started - item.enqueued)
            try:
                pairs = self._run(batch)
            except BaseException as e:  # noqa: BLE001 - each request fails on its own
                if len(batch) == 1:
                    pairs = [(batch[0].future, None, e)]
                else:
                    # Isolate the culprit: run the batch's requests one by one.
                    pairs = [p for item in batch for p in self._run_alone(item)]
            self._deliver(batch, pairs)

    def _run_alone(self, item: _Item) -> list[tuple[asyncio.Future, Outputs | None,
                                                    BaseException | None]]:
        try:
            return self._run([item])
        except BaseException as e:  # noqa: BLE001
            return [(item.future, None, e)]

    def _run(self, batch: list[_Item]) -> list[tuple[asyncio.Future, Outputs | None, None]]:
        images = (batch[0].images if len(batch) == 1
                  else np.concatenate([item.images for item in batch]))
        t0 = time.perf_counter()
        outputs = self._model(images)
        elapsed = time.perf_counter() - t0
        self.stats.add(self.stats.infer, elapsed, len(batch))
        with self.stats.lock:
            self.stats.executions += 1
        if self._metrics is not None:
            self._metrics.inference_duration.observe(elapsed)
            self._metrics.batch_size.observe(len(images))
        if self._observer is not None:
            try:
                self._observer(outputs)
            except Exception:  # noqa: BLE001 - monitoring must never fail a request
                log.exception("output observer failed")
        pairs: list[tuple[asyncio.Future, Outputs | None, None]] = []
        offset = 0
        for item in batch:
            n = len(item.images)
            pairs.append((item.future, {k: v[offset:offset + n] for k, v in outputs.items()},
                          None))
            offset += n
        return pairs

    def _deliver(self, batch: list[_Item], pairs: list) -> None:
        """Hands results to their event loops, with at most one wake-up pending per loop.

        Every ``call_soon_threadsafe`` writes a byte to the loop's self-pipe, which is
        also the signal wake-up fd: a loop that falls behind a stream of small batches
        would fill it, and a SIGTERM arriving then would be lost. So results wait in
        a per-loop list and a wake-up is sent only when that list was empty.
        """
        wake: list[asyncio.AbstractEventLoop] = []
        with self._results_lock:
            for item, pair in zip(batch, pairs, strict=True):
                waiting = self._results.setdefault(item.loop, [])
                if not waiting:
                    wake.append(item.loop)
                waiting.append(pair)
        for loop in wake:
            try:
                loop.call_soon_threadsafe(self._resolve_waiting, loop)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                with self._results_lock:
                    self._results.pop(loop, None)
                log.debug("dropping results for a closed event loop")

    def _resolve_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs on ``loop``: resolves every result that arrived for it since its wake-up."""
        with self._results_lock:
            pairs = self._results.pop(loop, [])
        _resolve(pairs)
