"""Client cancellation and deadlines: queued work is dropped, nothing leaks, all is counted."""

from __future__ import annotations

import time

import grpc
import pytest

from tests.reliability.support import (
    assert_serves_correctly,
    channel,
    infer_bytes,
    raw_call,
    requests_by_code,
    running_server,
    scrape,
    wait_until_idle,
)

REQUESTS = 16
IMAGES = 4096  # 64 model runs each: far more queued work than 50 ms can finish


def _batch_images(samples: dict) -> float:
    return samples.get(("highway_batch_size_sum", ()), 0.0)


@pytest.fixture(scope="module")
def busy_server(tiny_repository, tmp_path_factory):
    """A server whose queue can hold every part of every request (no RESOURCE_EXHAUSTED)."""
    log = tmp_path_factory.mktemp("cancel") / "server.log"
    with running_server(tiny_repository, "--max-queue", "100000", log=log) as server:
        yield server


def test_cancelled_requests_are_dropped_counted_and_leave_nothing_in_flight(busy_server):
    before = scrape(busy_server)
    with channel(busy_server) as ch:
        call = raw_call(ch, "ModelInfer")
        futures = [call.future(infer_bytes(IMAGES), timeout=60) for _ in range(REQUESTS)]
        time.sleep(0.3)  # let them reach the server and queue
        for f in futures:
            f.cancel()
        cancelled = sum(f.cancelled() for f in futures)
    after = wait_until_idle(busy_server)
    codes = requests_by_code(after, "ModelInfer")
    counted = codes.get("CANCELLED", 0) - requests_by_code(before, "ModelInfer").get(
        "CANCELLED", 0)
    assert cancelled > 0 and counted > 0
    ran = _batch_images(after) - _batch_images(before)
    assert ran < REQUESTS * IMAGES  # queued parts of cancelled requests never ran
    assert_serves_correctly(busy_server)


def test_deadlines_end_in_deadline_exceeded_and_leave_nothing_in_flight(busy_server):
    before = scrape(busy_server)
    with channel(busy_server) as ch:
        call = raw_call(ch, "ModelInfer")
        futures = [call.future(infer_bytes(IMAGES), timeout=0.05) for _ in range(REQUESTS)]
        codes = []
        for f in futures:
            try:
                f.result()
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
    assert "DEADLINE_EXCEEDED" in codes and set(codes) <= {"OK", "DEADLINE_EXCEEDED"}
    after = wait_until_idle(busy_server)
    old, new = requests_by_code(before, "ModelInfer"), requests_by_code(after, "ModelInfer")
    ended = {c: new.get(c, 0) - old.get(c, 0) for c in new}
    assert sum(ended.values()) >= 1  # the server saw them and counted every one it saw
    assert _batch_images(after) - _batch_images(before) < REQUESTS * IMAGES
    assert_serves_correctly(busy_server)


@pytest.mark.xfail(strict=True, reason="server bug: a request whose deadline passes is counted "
                   "as code=CANCELLED, not DEADLINE_EXCEEDED, in highway_requests_total; fix: "
                   "docs/perf/proposals/03-deadline-exceeded-metric-code.diff")
def test_deadline_exceeded_is_counted_under_its_own_code(busy_server):
    before = requests_by_code(scrape(busy_server), "ModelInfer").get("DEADLINE_EXCEEDED", 0)
    with channel(busy_server) as ch:
        call = raw_call(ch, "ModelInfer")
        futures = [call.future(infer_bytes(IMAGES), timeout=0.2) for _ in range(REQUESTS)]
        for f in futures:
            f.exception()
    after = requests_by_code(wait_until_idle(busy_server), "ModelInfer")
    assert after.get("DEADLINE_EXCEEDED", 0) > before


def test_many_cancelled_rounds_do_not_grow_memory(busy_server):
    def cancel_round() -> None:
        with channel(busy_server) as ch:
            call = raw_call(ch, "ModelInfer")
            futures = [call.future(infer_bytes(1024), timeout=60) for _ in range(REQUESTS)]
            time.sleep(0.05)
            for f in futures:
                f.cancel()
        wait_until_idle(busy_server)

    for _ in range(3):
        cancel_round()
    start = busy_server.rss_mb()
    for _ in range(10):
        cancel_round()
    end = busy_server.rss_mb()
    print(f"RSS over 10 cancelled rounds: {start:.1f} -> {end:.1f} MB")
    assert end - start < 20
