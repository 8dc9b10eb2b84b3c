"""How streams end: client cancellation, overload per request, and the server's drain.

Each test starts its own server on the shipped model, configured for one image
per model run, so a stream of requests keeps the model busy long enough to
interrupt it.
"""

from __future__ import annotations

import threading

import grpc
import pytest

from tests.polling import wait_until
from tests.server.helpers import launch
from tests.server.streaming import HeldOpen, infer, shipped_settings, slow_repository

SLOW = dict(max_queue_delay_us=0)


@pytest.fixture
def start(tmp_path):
    started = []
    repository = slow_repository(tmp_path / "slow")

    def start(**overrides):
        started.append(launch(shipped_settings(model_repository=repository, **overrides)))
        return started[-1]

    yield start
    for running in started:
        running.close()


def _stream_count(server, code: str) -> float:
    return server.metric("highway_requests_total", {"method": "ModelStreamInfer", "code": code})


def test_cancel_mid_stream_drops_queued_work_and_leaks_nothing(start, fixture_mnist):
    server = start(max_queue=100_000, **SLOW)
    n = 400
    sent = [infer(fixture_mnist.x_test[i % 100][None], id=str(i)) for i in range(n)]
    call = server.kserve.ModelStreamInfer(iter(sent), timeout=120)
    wait_until(lambda: server.app.calls.active >= 10, "requests in flight on the stream")
    call.cancel()
    wait_until(lambda: server.metric("highway_open_streams") == 0, "the stream to close")
    wait_until(lambda: server.metric("highway_inflight_requests") == 0, "no request in flight")
    cancelled, answered = _stream_count(server, "CANCELLED"), _stream_count(server, "OK")
    assert cancelled >= 5  # some of those in flight may have been answered meanwhile
    assert cancelled + answered <= n  # every request read is counted once
    assert server.metric("highway_batch_size_count") < n  # queued work never ran
    batcher = server.app.served.get("highway_mnist", 1).batcher
    wait_until(lambda: batcher.queued() == 0, "the batcher to drop the cancelled work")
    # The server goes on serving streams.
    again = list(server.kserve.ModelStreamInfer(iter(sent[:3]), timeout=30))
    assert [a.infer_response.id for a in again] == ["0", "1", "2"]


def test_overload_is_an_error_message_per_request_not_the_end_of_the_stream(start,
                                                                          fixture_mnist):
    server = start(max_queue=4, **SLOW)
    big = infer(fixture_mnist.x_test[:64], id="big")  # 64 queued parts: the queue is full
    small = [infer(fixture_mnist.x_test[i:i + 1], id=f"s{i}") for i in range(3)]
    answers = list(server.kserve.ModelStreamInfer(iter([big, *small]), timeout=60))
    assert [a.infer_response.id for a in answers] == ["big", "s0", "s1", "s2"]
    assert answers[0].error_message == ""
    refused = [a.error_message for a in answers[1:] if a.error_message]
    assert refused and set(refused) == {
        "RESOURCE_EXHAUSTED: the request queue is full (4 waiting); retry later"}
    assert _stream_count(server, "RESOURCE_EXHAUSTED") == len(refused)
    later = list(server.kserve.ModelStreamInfer(iter(small), timeout=30))
    assert [a.error_message for a in later] == ["", "", ""]


def test_drain_answers_every_request_read_then_ends_the_stream_unavailable(start,
                                                                          fixture_mnist):
    server = start(**SLOW)
    n = 20
    requests = HeldOpen([infer(fixture_mnist.x_test[:8], id=str(i)) for i in range(n)])
    call = server.kserve.ModelStreamInfer(iter(requests), timeout=120)
    try:
        # Every request read (in flight or answered) while the stream stays open.
        wait_until(lambda: server.app.calls.active + _stream_count(server, "OK") == n,
                 "the server to read every request")
        pending = server.app.calls.active
        stopper = threading.Thread(target=server.server.stop)
        stopper.start()
        answers, status = [], None
        try:
            for answer in call:
                answers.append(answer)
        except grpc.RpcError as e:
            status = (e.code(), e.details())
        stopper.join(60)
    finally:
        requests.release.set()
    assert pending > 0, "nothing was in flight at the drain: the test proved nothing"
    assert [a.infer_response.id for a in answers] == [str(i) for i in range(n)]
    assert {a.error_message for a in answers} == {""}
    assert status == (grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
    assert server.metric("highway_open_streams") == 0
    assert server.metric("highway_inflight_requests") == 0
