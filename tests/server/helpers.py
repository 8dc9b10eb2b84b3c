"""Helpers for the server tests: a started in-process server with real stubs."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry

from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from server.background import BackgroundServer
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


def launch(settings: Settings, load: bool = True) -> Running:
    """Starts a real server (fresh metrics registry) and connects to it."""
    registry = CollectorRegistry()
    return Running(BackgroundServer(settings, registry, load=load).start(), registry)
