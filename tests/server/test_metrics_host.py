"""--metrics-host binds /metrics apart from the gRPC port."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc


def test_metrics_listen_only_on_their_own_address(start_server):
    # gRPC on 127.0.0.1, metrics on 127.0.0.2 (both loopback on Linux).
    running = start_server(host="127.0.0.1", metrics_host="127.0.0.2")
    port = running.app.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=10) as answer:
        assert b"highway_requests_total" in answer.read()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
    status = health_pb2_grpc.HealthStub(running.channel).Check(
        health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING
