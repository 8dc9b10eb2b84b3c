"""Fixtures for the server tests: real in-process servers on free ports, real stubs."""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from prometheus_client import CollectorRegistry

from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from server.app import BackgroundServer
from server.settings import Settings


class Running:
    """A started server with ready-made stubs."""

    def __init__(self, server: BackgroundServer, registry: CollectorRegistry):
        self.server = server
        self.registry = registry
        self.app = server.app
        self.address = f"127.0.0.1:{server.app.port}"
        self.channel = grpc.insecure_channel(self.address, options=[
            ("grpc.max_send_message_length", 256 << 20),
            ("grpc.max_receive_message_length", 256 << 20)])
        self.classifier = hw_grpc.ClassifierStub(self.channel)
        self.kserve = kserve_grpc.GRPCInferenceServiceStub(self.channel)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value

    def close(self) -> None:
        self.channel.close()
        self.server.stop()


@pytest.fixture(scope="session")
def base_settings(tiny_repository) -> Settings:
    """Settings for a test server: the tiny exported model, free ports, loopback only."""
    return Settings(model_repository=tiny_repository, host="127.0.0.1", grpc_port=0,
                    metrics_port=0, device="cpu", grace_period_s=10.0, intra_op_threads=1)


@pytest.fixture
def start_server(base_settings):
    """Factory: start_server(**setting_overrides) → Running; all stopped after the test."""
    started: list[Running] = []

    def start(load: bool = True, **overrides) -> Running:
        registry = CollectorRegistry()
        server = BackgroundServer(replace(base_settings, **overrides), registry, load=load)
        running = Running(server.start(), registry)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


@pytest.fixture(scope="module")
def shared_server(base_settings):
    """One server for a whole module of tests that only read (metrics not asserted)."""
    registry = CollectorRegistry()
    running = Running(BackgroundServer(base_settings, registry).start(), registry)
    yield running
    running.close()
