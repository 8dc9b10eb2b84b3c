"""The batcher with plain Python functions as the model: merging, splitting, failure, overload."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from server import metrics as metrics_module
from server.batching import Batcher, BatchSettings
from server.errors import Overloaded, Unavailable


class RecordingModel:
    """Doubles its input; remembers every batch size; blocks while ``gate`` is clear."""

    def __init__(self, poison: int | None = None):
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.poison = poison

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.entered.set()
        self.gate.wait(10)
        self.sizes.append(len(images))
        if self.poison is not None and (images == self.poison).any():
            raise ValueError("poisoned image")
        return {"double": images.astype(np.int64) * 2, "sum": images.sum(axis=(1, 2))}


def batch(value: int, n: int = 1) -> np.ndarray:
    return np.full((n, 2, 2), value, dtype=np.uint8)


def run(coroutine):
    return asyncio.run(coroutine)


def test_lone_request_runs_at_once_without_waiting_the_queue_delay():
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings(max_batch_size=8, max_queue_delay_us=2_000_000))

    async def go():
        start = time.perf_counter()
        out = await batcher.infer(batch(3))
        return time.perf_counter() - start, out

    elapsed, out = run(go())
    batcher.close()
    assert elapsed < 1.0  # far below the 2 s delay: nobody else was queued
    assert out["double"].tolist() == [[[6, 6], [6, 6]]]


def test_concurrent_requests_share_runs_and_each_gets_its_own_rows():
    model = RecordingModel()
    registry = CollectorRegistry()
    metrics = metrics_module.create(registry)
    batcher = Batcher(model, BatchSettings(max_batch_size=64, max_queue_delay_us=1000), metrics)
    model.gate.clear()  # hold the first run so the others pile up behind it

    async def go():
        tasks = [asyncio.create_task(batcher.infer(batch(i))) for i in range(20)]
        await asyncio.sleep(0.05)
        model.gate.set()
        return await asyncio.gather(*tasks)

    results = run(go())
    batcher.close()
    assert [int(r["sum"][0]) for r in results] == [4 * i for i in range(20)]
    assert sum(model.sizes) == 20 and len(model.sizes) < 20 and max(model.sizes) > 1
    assert registry.get_sample_value("highway_batch_size_count") == len(model.sizes)
    assert registry.get_sample_value("highway_batch_size_sum") == 20
    assert registry.get_sample_value("highway_queue_duration_seconds_count") == 20


def test_large_request_is_split_into_runs_of_max_batch_size_and_reassembled():
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings(max_batch_size=4, max_queue_delay_us=0))
    images = np.arange(10 * 4, dtype=np.uint8).reshape(10, 2, 2)
    out = run(batcher.infer(images))
    batcher.close()
    assert model.sizes == [4, 4, 2]
    np.testing.assert_array_equal(out["double"], images.astype(np.int64) * 2)


def test_a_failing_request_fails_alone_and_its_batch_mates_are_answered():
    model = RecordingModel(poison=99)
    batcher = Batcher(model, BatchSettings(max_batch_size=64, max_queue_delay_us=1000))
    model.gate.clear()

    async def go():
        tasks = [asyncio.create_task(batcher.infer(batch(v))) for v in (1, 2, 99, 3, 4)]
        await asyncio.sleep(0.05)
        model.gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = run(go())
    batcher.close()
    assert isinstance(results[2], ValueError)
    assert [int(r["sum"][0]) for i, r in enumerate(results) if i != 2] == [4, 8, 12, 16]
    assert any(size > 1 for size in model.sizes)  # they really were batched together first


def test_full_queue_answers_overloaded_and_recovers_when_it_drains():
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings(max_batch_size=1, max_queue_delay_us=0, max_queue=3))
    model.gate.clear()

    async def go():
        running = [asyncio.create_task(batcher.infer(batch(0)))]
        await asyncio.to_thread(model.entered.wait, 5)  # the first is in the model
        running += [asyncio.create_task(batcher.infer(batch(i))) for i in range(1, 4)]
        await asyncio.sleep(0.05)  # three queued behind it: the queue is full
        with pytest.raises(Overloaded, match="queue is full"):
            await batcher.infer(batch(9))
        model.gate.set()
        await asyncio.gather(*running)
        return await batcher.infer(batch(5))

    out = run(go())
    batcher.close()
    assert int(out["sum"][0]) == 20


def test_queue_bound_counts_every_part_of_a_split_request():
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings(max_batch_size=1, max_queue_delay_us=0, max_queue=4))
    model.gate.clear()

    async def go():
        first = asyncio.create_task(batcher.infer(batch(0)))
        await asyncio.to_thread(model.entered.wait, 5)  # in the model: the queue is empty
        queued = asyncio.create_task(batcher.infer(batch(1)))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="queue is full"):
            await batcher.infer(batch(2, n=10))  # 10 parts behind 1 would pass the bound of 4
        model.gate.set()
        await asyncio.gather(first, queued)
        return await batcher.infer(batch(3, n=10))  # alone, a request over the bound is taken

    out = run(go())
    batcher.close()
    assert len(out["sum"]) == 10


def test_cancelled_request_is_dropped_before_it_reaches_the_model():
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings(max_batch_size=1, max_queue_delay_us=0))
    model.gate.clear()

    async def go():
        first = asyncio.create_task(batcher.infer(batch(1)))
        await asyncio.to_thread(model.entered.wait, 5)
        doomed = asyncio.create_task(batcher.infer(batch(2)))
        await asyncio.sleep(0.05)
        doomed.cancel()
        model.gate.set()
        await first
        return await batcher.infer(batch(3))

    run(go())
    batcher.close()
    assert model.sizes == [1, 1]  # the cancelled request never ran


def test_closed_batcher_refuses_new_work_but_finished_the_queued():
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings())
    run(batcher.infer(batch(1)))
    batcher.close()
    with pytest.raises(Unavailable):
        run(batcher.infer(batch(1)))


def test_a_stalled_loop_still_gets_its_signals_while_results_pile_up():
    # Every wake-up of an event loop is a byte in its self-pipe, which is also where
    # signals land: thousands of results for a busy loop must not crowd out a SIGTERM.
    model = RecordingModel()
    batcher = Batcher(model, BatchSettings(max_batch_size=1, max_queue_delay_us=0,
                                           max_queue=10_000))
    received = []

    async def go():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR2, received.append, "SIGUSR2")
        try:
            tasks = [asyncio.create_task(batcher.infer(batch(i % 100))) for i in range(3000)]
            await asyncio.sleep(0)  # every task has queued its image
            time.sleep(1.0)  # the loop stalls while the worker answers them, one run each
            os.kill(os.getpid(), signal.SIGUSR2)
            answers = await asyncio.gather(*tasks)
            await asyncio.sleep(0.05)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)
        return answers

    answers = run(go())
    batcher.close()
    assert len(model.sizes) == 3000 and len(answers) == 3000
    assert received == ["SIGUSR2"]


def test_a_batch_reaching_a_preferred_size_runs_without_waiting_out_the_delay():
    model = RecordingModel()
    # A 10-minute delay: without the preferred size, the second run would wait it out.
    batcher = Batcher(model, BatchSettings(max_batch_size=8, max_queue_delay_us=600_000_000,
                                           preferred_batch_sizes=(2,)))
    model.gate.clear()  # hold the first run so the next two queue behind it

    async def go():
        first = asyncio.create_task(batcher.infer(batch(1)))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.infer(batch(i))) for i in (2, 3)]
        await asyncio.sleep(0.05)
        model.gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), 60)

    results = run(go())
    batcher.close()
    assert [int(r["sum"][0]) for r in results] == [4, 8, 12]
    assert model.sizes == [1, 2]
