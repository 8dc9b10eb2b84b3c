"""Composition: ports, models, batchers, health, reflection, metrics, graceful drain.

Start order: bind the gRPC port (health NOT_SERVING), load and warm the models the
control mode names (registry.py), then SERVING; in poll mode the poller starts.
Shutdown: NOT_SERVING and UNAVAILABLE for new calls at once, finish the calls
already in handlers (up to the grace period), then stop the gRPC server; stopping
first would cancel calls queued but not yet in a handler.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from protos.highway.v1 import classifier_pb2
from protos.inference import grpc_service_pb2
from server import metrics as metrics_module
from server import repository
from server.calls import Calls, service_handler
from server.errors import ModelLoadError, StartupError
from server.fleet import READY, STOPPED, Fleet
from server.gates import GateMonitor
from server.poller import Poller
from server.published import Published
from server.registry import Registry
from server.restricted import RestrictedCalls, parse_groups
from server.servicers import ClassifierServicer, InferenceServicer, Served
from server.settings import Settings
from server.statistics import PeerFiles
from server.tls import Certificates

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT_MS = 10_000  # grpc's default is 120 s
SERVICES = (
    classifier_pb2.DESCRIPTOR.services_by_name["Classifier"].full_name,
    grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
)


class App:
    """One server: build, :meth:`bind`, :meth:`load`, then :meth:`stop`."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None,
                 fleet: Fleet | None = None):
        """``fleet``: set when this App is one worker of several (server/workers.py)."""
        self.settings = settings
        self.fleet = fleet
        self.metrics = metrics_module.create(registry or CollectorRegistry(),
                                             worker=fleet.index if fleet else None)
        self.calls = Calls(self.metrics)
        # A worker of several answers ModelStatistics for all of them (server/statistics.py).
        peers = (PeerFiles(fleet.shared / "statistics", fleet.index)
                 if fleet is not None and fleet.shared is not None else None)
        self.served = Served(settings, self.metrics, peers)
        self.gates: GateMonitor | None = None
        if settings.gate_metrics:
            self.gates = GateMonitor(settings.drift_window, settings.drift_interval_s,
                                     settings.drift_threshold)
        # One process: the gate collector computes at scrape time. A worker of several:
        # the supervisor serves the workers' metric files, which only a thread writing
        # them reaches (server/published.py).
        self.published: Published | None = None
        if fleet is not None:
            self.published = Published(self.metrics.registry, self.metrics.queued, self.gates,
                                       peers)
        elif self.gates is not None:
            self.metrics.registry.register(self.gates)
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.metrics_port: int | None = None
        self._httpd = None
        self._follower: asyncio.Task | None = None
        self.certificates: Certificates | None = None
        self.poller: Poller | None = None

    async def bind(self) -> None:
        """Starts gRPC (health NOT_SERVING) and the metrics endpoint."""
        s = self.settings
        if s.tls:  # every file checked before anything binds: a bad one is one line, exit 1
            self.certificates = Certificates(
                s.tls_cert, s.tls_key, s.tls_client_ca,
                lambda loaded: self.metrics.certificate_expiry.set(loaded.not_after.timestamp()))
        restrictions = parse_groups(s.grpc_restricted_protocol)
        self.server = grpc.aio.server(
            options=server_options(s, shared_port=self.fleet is not None),
            interceptors=[RestrictedCalls(
                restrictions, lambda c: self.metrics.denied.labels(category=c).inc())]
            if restrictions else None)
        self.server.add_generic_rpc_handlers((
            service_handler(ClassifierServicer(self.served, self.calls),
                            classifier_pb2.DESCRIPTOR.services_by_name["Classifier"]),
            service_handler(InferenceServicer(self.served, self.calls),
                            grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]),
        ))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), self.server)
        for service in ("", *SERVICES):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{s.host}:{s.grpc_port}"
        try:
            if self.certificates is not None:
                self.port = self.server.add_secure_port(address, self.certificates.credentials())
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            raise StartupError(f"cannot listen on {s.host}:{s.grpc_port} (port in use?)") from None
        await self.server.start()
        if s.metrics_port >= 0:
            try:
                self._httpd, self.metrics_port = metrics_module.serve(
                    self.metrics, s.metrics_host or s.host, s.metrics_port)
            except OSError as e:
                await self.server.stop(None)
                raise StartupError(f"cannot serve metrics on {s.metrics_host or s.host}:"
                                   f"{s.metrics_port}: {e.strerror}") from None

    async def load(self) -> None:
        """Loads what the control mode asks for (off the event loop), then reports SERVING.

        Any model that fails at start stops the server (Triton's default); later
        failures (poll, explicit loads) leave what serves untouched.
        """
        s = self.settings
        self.metrics.queue_capacity.set(s.max_queue)
        registry = Registry(s, self.metrics, self.gates, self.published)
        if self.published is not None:
            self.published.start()
        names = None  # every model in the repository
        if s.model_control_mode == "explicit":
            on_disk = repository.model_names(s.model_repository)
            names = on_disk if "*" in s.load_model else list(s.load_model)
            for name in names:
                if name not in on_disk:
                    raise ModelLoadError(f"--load-model {name}: no such model folder in "
                                         f"{s.model_repository}")
        problems = await registry.sync(names, at_start=True)
        if not problems and s.model_control_mode == "none" and not registry.names():
            problems = [f"model repository {s.model_repository} holds no models (see README: "
                        "making a model repository)"]
        if problems:
            await registry.close()
            raise ModelLoadError(problems[0])
        self.served.registry = registry
        if s.model_control_mode == "poll":
            self.poller = Poller(registry, s.repository_poll_secs)
            self.poller.start()
        if self.fleet is None:
            await self._publish_ready(True)
        else:  # SERVING once every worker is ready, NOT_SERVING when any is not
            self.fleet.mark(READY)
            self._follower = asyncio.create_task(self.fleet.follow(self._publish_ready))
        log.info("serving gRPC%s on %s:%d, metrics on %s", " (TLS)" if s.tls else "", s.host,
                 self.port, f"{s.metrics_host or s.host}:{self.metrics_port}"
                 if self.metrics_port is not None else "no port")

    async def _publish_ready(self, ready: bool) -> None:
        """Health (every service) and ServerReady/ModelReady tell the same thing."""
        self.calls.ready = ready
        status = (health_pb2.HealthCheckResponse.SERVING if ready
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for service in ("", *SERVICES):
            await self.health.set(service, status)
        if self.metrics.worker_ready is not None:
            self.metrics.worker_ready.set(1 if ready else 0)

    async def stop(self, close_transport: bool = True) -> None:
        """Graceful: refuse new calls, finish accepted ones (grace period), stop.

        ``close_transport=False`` leaves the gRPC server's connections to the
        process's exit: grpcio's ``stop()`` answers CANCELLED to calls that
        reached the server but not yet a handler (grpc/grpc#41785), whereas
        connections closed by the exit give their clients UNAVAILABLE.
        """
        self.calls.draining = True
        self.calls.ready = False
        if self.fleet is not None:
            self.fleet.mark(STOPPED)  # siblings stop reporting SERVING too
            if self._follower is not None:
                self._follower.cancel()
            self.metrics.worker_ready.set(0)
        await self.health.enter_graceful_shutdown()
        pending = self.calls.active
        if pending:
            log.info("shutting down: finishing %d request(s) in progress", pending)
        try:
            await asyncio.wait_for(self.calls.idle.wait(), self.settings.grace_period_s)
        except TimeoutError:
            log.warning("grace period over with %d request(s) unfinished", self.calls.active)
        if self.server is not None and close_transport:
            await self.server.stop(0.5)
        if self.poller is not None:
            await self.poller.stop()
        if self.served.registry is not None:
            await self.served.registry.close()
        if self.published is not None:  # after the batchers: their last counts get out too
            self.published.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        log.info("stopped")


def server_options(s: Settings, shared_port: bool = False) -> list[tuple[str, int]]:
    """gRPC core limits: each refuses before it allocates anything sized from the request.

    ``shared_port``: one of several --workers on one port; limits count per worker.
    """
    return [
        # The 5-byte length prefix is checked before the message is buffered.
        ("grpc.max_receive_message_length", s.max_message_bytes),
        ("grpc.max_send_message_length", s.max_message_bytes),
        # Connections past this are closed right after accept, before any handshake.
        ("grpc.max_allowed_incoming_connections", s.max_connections),
        # Advertised in HTTP/2 SETTINGS; a client opening more gets RST_STREAM(REFUSED_STREAM).
        ("grpc.max_concurrent_streams", s.max_concurrent_streams),
        # HPACK header blocks: soft and hard limit equal, so every larger block is refused
        # (between the two grpc would refuse only some).
        ("grpc.max_metadata_size", s.max_metadata_bytes),
        ("grpc.absolute_max_metadata_size", s.max_metadata_bytes),
        # A connection that never finishes its (TLS) handshake holds a slot this long at most.
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
        # Alone, a busy port must fail, not be shared; workers share it on purpose.
        ("grpc.so_reuseport", 1 if shared_port else 0),
    ]
