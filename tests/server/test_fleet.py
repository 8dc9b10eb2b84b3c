"""Health under ``--workers``: SERVING only while every worker is ready.

Two real in-process servers share a readiness array exactly as two worker
processes share the supervisor's (server/fleet.py); each is probed over real
gRPC. In-process, so the test decides when each worker loads.
"""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from prometheus_client import CollectorRegistry

from protos.inference import grpc_service_pb2 as kserve
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from server.background import BackgroundServer
from server.fleet import READY, STOPPED, Fleet
from server.healthcheck import ProbeSettings, probe
from tests.polling import wait_until


def healthy(server: BackgroundServer) -> bool:
    return probe(ProbeSettings(address=f"127.0.0.1:{server.app.port}", timeout=5)).healthy


def server_ready(server: BackgroundServer) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{server.app.port}") as channel:
        stub = kserve_grpc.GRPCInferenceServiceStub(channel)
        return stub.ServerReady(kserve.ServerReadyRequest(), timeout=5).ready


def ready_gauge(server: BackgroundServer) -> float | None:
    worker = str(server.app.fleet.index)
    return server.app.metrics.registry.get_sample_value("highway_worker_ready",
                                                        {"worker": worker})


@pytest.fixture
def two_workers(base_settings):
    states = bytearray(2)  # stands where the supervisor's shared RawArray does
    settings = replace(base_settings, metrics_port=-1)
    servers = [BackgroundServer(settings, CollectorRegistry(), load=False,
                                fleet=Fleet(states, i)).start() for i in range(2)]
    yield states, servers
    for server in servers:
        server.stop()


def test_serving_only_once_every_worker_is_ready_and_not_after_one_dies(two_workers):
    states, (first, second) = two_workers
    first.call(first.app.load())
    assert states[0] == READY
    assert not healthy(first) and not server_ready(first), "ready before its sibling"
    wait_until(lambda: ready_gauge(first) == 0, "first worker's ready gauge 0", interval=0.02)

    second.call(second.app.load())
    wait_until(lambda: healthy(first) and healthy(second), "both workers SERVING",
               interval=0.02)
    assert server_ready(first) and server_ready(second)
    assert ready_gauge(first) == 1

    states[1] = STOPPED  # what the supervisor writes when worker 1 has died
    wait_until(lambda: not healthy(first), "first worker NOT_SERVING", interval=0.02)
    assert not server_ready(first)


def test_a_draining_worker_takes_its_siblings_out_of_service(two_workers):
    states, (first, second) = two_workers
    for server in (first, second):
        server.call(server.app.load())
    wait_until(lambda: healthy(first), "first worker SERVING", interval=0.02)
    second.stop()
    assert states[1] == STOPPED
    wait_until(lambda: not healthy(first), "first worker NOT_SERVING", interval=0.02)


def test_a_worker_index_outside_the_array_is_refused():
    with pytest.raises(ValueError, match="worker index 2 outside 0..1"):
        Fleet(bytearray(2), 2)
