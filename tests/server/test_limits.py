"""Limits that bound the server's memory before it allocates anything a request asks for.

A raw HTTP/2 client breaks the rules a gRPC client keeps (tests/server/rawh2.py):
it announces a message far larger than it sends, opens streams past the
server's limit and sends oversized header blocks. Each is refused at once and
the server stays SERVING.
"""

from __future__ import annotations

import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.server.rawh2 import RawH2

RESOURCE_EXHAUSTED = str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
LIMITS = {"max_message_bytes": 1 << 20, "max_connections": 4, "max_concurrent_streams": 2,
          "max_metadata_bytes": 8192}


@pytest.fixture(scope="module")
def limited(base_settings):
    from dataclasses import replace

    from tests.server.helpers import launch

    running = launch(replace(base_settings, metrics_port=-1, **LIMITS))
    yield running
    running.close()


def health(port: int, **kwargs) -> object:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10, **kwargs).status
        except grpc.RpcError as e:
            return e.code()


def test_the_limits_are_announced_in_http2_settings(limited):
    raw = RawH2(limited.app.port)
    try:
        assert raw.server_settings[h2_code("MAX_CONCURRENT_STREAMS")] == 2
        assert raw.server_settings[h2_code("MAX_HEADER_LIST_SIZE")] == 8192
    finally:
        raw.close()


def h2_code(name: str) -> int:
    import h2.settings

    return int(h2.settings.SettingCodes[name])


def test_an_announced_oversized_message_is_refused_after_its_5_byte_prefix(limited):
    raw = RawH2(limited.app.port)
    try:  # claims 1 GiB, sends 100 bytes: the answer cannot have waited for (or buffered) it
        stream = raw.start_call("/highway.v1.Classifier/Predict")
        raw.announce_message(stream, 1 << 30, b"x" * 100)
        assert raw.wait_ended(stream) == RESOURCE_EXHAUSTED
    finally:
        raw.close()
    assert health(limited.app.port) == health_pb2.HealthCheckResponse.SERVING


def test_a_real_client_sending_too_large_a_message_gets_resource_exhausted(limited):
    with grpc.insecure_channel(limited.address) as channel:
        with pytest.raises(grpc.RpcError) as error:
            channel.unary_unary("/highway.v1.Classifier/Predict")(b"\0" * (2 << 20), timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in error.value.details()


def test_streams_past_the_limit_are_refused_and_the_first_ones_live(limited):
    raw = RawH2(limited.app.port)
    try:
        raw.ignore_stream_limit()
        streams = [raw.start_call("/grpc.health.v1.Health/Watch") for _ in range(5)]
        for stream in streams:
            raw.announce_message(stream, 0)
        for stream in streams[2:]:
            assert raw.wait_ended(stream) == "reset:REFUSED_STREAM"
        assert [raw.ended(s) for s in streams[:2]] == [None, None]  # still watching
    finally:
        raw.close()
    assert health(limited.app.port) == health_pb2.HealthCheckResponse.SERVING


def test_a_header_block_over_the_limit_is_refused(limited):
    raw = RawH2(limited.app.port)
    try:
        stream = raw.start_call("/grpc.health.v1.Health/Check", [("x-padding", "a" * 20_000)])
        raw.announce_message(stream, 0)
        assert raw.wait_ended(stream) == RESOURCE_EXHAUSTED
    finally:
        raw.close()
    assert health(limited.app.port, metadata=[("x-padding", "a" * 20_000)]) == \
        grpc.StatusCode.RESOURCE_EXHAUSTED
    assert health(limited.app.port, metadata=[("x-padding", "a" * 4_000)]) == \
        health_pb2.HealthCheckResponse.SERVING


def test_connections_past_the_limit_are_closed_and_served_again_once_freed(start_server):
    # A server of its own. On the module's shared server, after the other tests' raw
    # connections, this failed about 1 run in 4 on a loaded machine (health answered
    # SERVING with 4 of 4 slots taken) and never alone; the cause was not found.
    port = start_server(metrics_port=-1, **LIMITS).app.port
    # Bare TCP connections that never speak: the cheapest flood there is.
    flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        assert health(port) == grpc.StatusCode.UNAVAILABLE
    finally:
        for sock in flood:
            sock.close()
    assert health(port, wait_for_ready=True) == health_pb2.HealthCheckResponse.SERVING
