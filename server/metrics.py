"""Every Prometheus metric of the server, on a registry passed in.

Latency histograms are in seconds with buckets from 100 µs to 10 s; batch
sizes get power-of-two buckets. Tests build a fresh ``CollectorRegistry`` each.

With ``--workers N`` every worker process writes its values to prometheus_client's
multiprocess files and the supervisor serves them merged (server/workers.py):
counters and histograms add up; each gauge says how it merges
(``multiprocess_mode``, ignored in a single process).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class Metrics:
    """The server's metrics; build with :func:`create`."""

    registry: CollectorRegistry
    request_duration: Histogram
    requests: Counter
    queue_duration: Histogram
    inference_duration: Histogram
    batch_size: Histogram
    images: Counter
    inflight: Gauge
    open_streams: Gauge
    model_info: Gauge
    queued: Gauge
    queue_capacity: Gauge
    denied: Counter
    certificate_expiry: Gauge
    model_load_duration: Histogram
    model_loads: Counter
    multiprocess: bool = False
    """Values live in shared files: a gauge's ``set_function`` cannot reach them."""
    worker_requests: Counter | None = None
    """This worker's share of the RPCs (multiprocess only; labelled with its index)."""
    worker_ready: Gauge | None = None
    """1 while this worker serves (multiprocess only; one series per live pid)."""

    def observe_request(self, method: str, code: str, seconds: float) -> None:
        """One finished RPC: its duration and its count, by method and status code."""
        self.request_duration.labels(method=method, code=code).observe(seconds)
        self.requests.labels(method=method, code=code).inc()
        if self.worker_requests is not None:
            self.worker_requests.inc()


def create(registry: CollectorRegistry, worker: int | None = None) -> Metrics:
    """Registers every metric on ``registry``; ``worker``: this process's index under --workers.

    A worker's metrics must be created after the supervisor has set
    ``PROMETHEUS_MULTIPROC_DIR`` (it is read when prometheus_client is imported).
    """
    per_worker = {}
    if worker is not None:
        per_worker = dict(
            multiprocess=True,
            worker_requests=Counter(
                "highway_worker_requests", "RPCs answered by each worker process.",
                ("worker",), registry=registry).labels(worker=str(worker)),
            # liveall: one series per live process, with its pid, so a dead one disappears.
            worker_ready=Gauge(
                "highway_worker_ready", "1 while the worker process serves, else 0.",
                ("worker",), registry=registry, multiprocess_mode="liveall"
            ).labels(worker=str(worker)),
        )
    return Metrics(
        registry=registry,
        request_duration=Histogram(
            "highway_request_duration_seconds", "Whole RPC as seen by the server.",
            ("method", "code"), buckets=LATENCY_BUCKETS, registry=registry),
        requests=Counter(
            "highway_requests", "RPCs answered, by method and status code.",
            ("method", "code"), registry=registry),
        queue_duration=Histogram(
            "highway_queue_duration_seconds", "Time a request waited in the batcher.",
            buckets=LATENCY_BUCKETS, registry=registry),
        inference_duration=Histogram(
            "highway_inference_duration_seconds", "One ONNX Runtime run.",
            buckets=LATENCY_BUCKETS, registry=registry),
        batch_size=Histogram(
            "highway_batch_size", "Images per ONNX Runtime run.",
            buckets=BATCH_BUCKETS, registry=registry),
        images=Counter(
            "highway_images", "Images classified in successful requests.", registry=registry),
        inflight=Gauge(
            "highway_inflight_requests",
            "Requests being handled now: unary RPCs and requests on streams.", registry=registry,
            multiprocess_mode="livesum"),  # in flight across live workers
        open_streams=Gauge(
            "highway_open_streams", "Streaming RPCs (ModelStreamInfer, PredictStream) open now.",
            registry=registry, multiprocess_mode="livesum"),
        model_info=Gauge(
            "highway_model_info", "Loaded models (value 1) and their active execution provider.",
            ("model", "version", "provider"), registry=registry,
            multiprocess_mode="livemax"),  # loaded in any live worker; one series, not N
        model_load_duration=Histogram(
            "highway_model_load_duration_seconds",
            "Loading one model version: session, checks and warm-up (successful loads).",
            ("model", "version"), buckets=LOAD_BUCKETS, registry=registry),
        model_loads=Counter(
            "highway_model_loads", "Model version loads, by outcome (success, failure).",
            ("model", "version", "outcome"), registry=registry),
        queued=Gauge(
            "highway_queue_requests", "Request parts waiting for the model now.",
            ("model", "version"), registry=registry, multiprocess_mode="livesum"),
        queue_capacity=Gauge(
            "highway_queue_capacity", "Most request parts that may wait (--max-queue); "
            "past it: RESOURCE_EXHAUSTED.", registry=registry,
            multiprocess_mode="livemax"),
        denied=Counter(
            "highway_denied_requests", "Calls refused for a missing or wrong restricted-"
            "category header (--grpc-restricted-protocol).", ("category",), registry=registry),
        certificate_expiry=Gauge(
            "highway_tls_certificate_expiry_timestamp_seconds", "When the gRPC port's TLS "
            "certificate in use expires (Unix time); 0 without TLS.", registry=registry,
            multiprocess_mode="livemin"),  # the soonest among live workers
        **per_worker,
    )


def serve(metrics: Metrics, host: str, port: int) -> tuple[object, int]:
    """Starts the /metrics HTTP server in a daemon thread; returns (server, bound port)."""
    httpd, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return httpd, int(httpd.server_port)
