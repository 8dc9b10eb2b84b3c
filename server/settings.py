"""Typed server settings: every flag also as an environment variable ``HIGHWAY_<FLAG>``.

Built once by :func:`from_args` in ``__main__`` (or directly in tests) and passed
in; nothing is read from the environment at import time.
"""

from __future__ import annotations

import argparse
import os
import types as types_module
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from highway_core.facts import DEFAULT_MAX_BATCH_SIZE, DEFAULT_QUEUE_DELAY_US

ENV_PREFIX = "HIGHWAY_"
DEVICES = ("auto", "cuda", "cpu")
MAX_WORKERS = 64  # each worker holds its own model sessions; more is a typo, not a plan
CONTROL_MODES = ("none", "poll", "explicit")


def default_repository() -> Path:
    """``models`` in the working directory: the shipped repository when run from the checkout.

    Not a path computed from this file: a plain ``pip install .`` puts the package in
    site-packages, where no ``models/`` exists. The image sets ``/models`` instead.
    """
    return Path("models")


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; defaults follow Triton's ports."""

    model_repository: Path = default_repository()
    """Triton-layout repository: <repo>/<model>/config.pbtxt and <version>/model.onnx."""
    host: str = "0.0.0.0"
    """Address the gRPC server (and, unless ``metrics_host`` is set, /metrics) binds to."""
    grpc_port: int = 8001
    """gRPC port (0: any free port)."""
    metrics_port: int = 8002
    """Prometheus /metrics HTTP port (0: any free port, -1: no metrics server)."""
    device: str = "auto"
    """auto: CUDA when it really initialises, else CPU; cuda: CUDA or fail; cpu."""
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    """Most images in one ONNX Runtime run."""
    max_request_images: int = 4096
    """Most images in one request (split across runs); above: INVALID_ARGUMENT."""
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    """Longest wait for more requests to join a batch, once concurrency is seen."""
    max_queue: int = 1024
    """Most requests waiting for the model; past it: RESOURCE_EXHAUSTED."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest gRPC message received or sent."""
    grace_period_s: float = 30.0
    """On SIGTERM/SIGINT: how long requests already accepted may take to finish."""
    intra_op_threads: int = 0
    """ONNX Runtime intra-op threads (0: CPU cores ÷ workers)."""
    workers: int = 1
    """Server processes sharing the gRPC port (SO_REUSEPORT); 1: one process, no supervisor."""
    log_level: str = "INFO"
    """Python logging level."""
    model_control_mode: str = "none"
    """Triton's modes: none (load everything once at start), poll (follow the repository
    while serving), explicit (load what --load-model names; then the repository RPCs)."""
    repository_poll_secs: float = 15.0
    """poll mode: seconds between two looks at the repository."""
    load_model: tuple[str, ...] = ()
    """explicit mode: models to load at start (repeatable; "*" loads every model)."""
    gate_metrics: int = 1
    """1: export per-layer gate activity and gate drift (server/gates.py); 0: off."""
    drift_window: int = 1000
    """Recent images per model version whose gates are compared with the reference."""
    drift_interval_s: float = 10.0
    """Drift is recomputed at most this often (at scrape time)."""
    drift_threshold: float = 0.1
    """Drift score (largest layer PSI) above which the model counts as drifted."""
    tls_cert: Path | None = None
    """PEM certificate chain of the gRPC port; with ``tls_key`` it turns TLS on."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_client_ca: Path | None = None
    """PEM CA certificate(s): clients must present a certificate it signed (mutual TLS)."""
    grpc_restricted_protocol: tuple[str, ...] = field(default=(), repr=False)
    """``CATEGORY[,CATEGORY...]:KEY=VALUE`` groups (Triton's option); repr hides the keys."""
    metrics_host: str = ""
    """Address of the /metrics endpoint ("": the same as ``host``)."""
    max_connections: int = 1024
    """Most open connections (TCP accepted, TLS included); past it new ones are closed."""
    max_concurrent_streams: int = 100
    """Most concurrent calls per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)."""
    max_metadata_bytes: int = 16 * 1024
    """Largest header block (metadata) of a call; larger ones are refused."""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        for name in ("max_batch_size", "max_request_images", "max_queue", "max_message_bytes",
                     "max_connections", "max_concurrent_streams", "max_metadata_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"--workers must be between 1 and {MAX_WORKERS}, not {self.workers}")
        if self.model_control_mode not in CONTROL_MODES:
            raise ValueError(f"--model-control-mode must be one of {', '.join(CONTROL_MODES)}, "
                             f"not {self.model_control_mode!r}")
        if self.repository_poll_secs <= 0:
            raise ValueError("--repository-poll-secs must be positive")
        if self.load_model and self.model_control_mode != "explicit":
            raise ValueError("--load-model needs --model-control-mode explicit")
        if self.model_control_mode == "explicit" and self.workers > 1:
            # A load or unload call reaches one worker; the others would disagree.
            raise ValueError("--model-control-mode explicit needs --workers 1 (a load or unload "
                             "call reaches only one worker)")
        if self.max_queue_delay_us < 0 or self.grace_period_s < 0 or self.intra_op_threads < 0:
            raise ValueError("delays, grace period and thread counts must not be negative")
        if self.gate_metrics not in (0, 1):
            raise ValueError("--gate-metrics must be 0 or 1")
        if self.drift_window < 10:
            raise ValueError("--drift-window must be at least 10 images")
        if self.drift_interval_s < 0 or self.drift_threshold <= 0:
            raise ValueError("--drift-interval-s must not be negative and --drift-threshold "
                             "must be positive")
        for name in ("grpc_port", "metrics_port"):
            port = getattr(self, name)
            if not -1 <= port <= 65535 or (name == "grpc_port" and port < 0):
                raise ValueError(f"--{name.replace('_', '-')} {port} is not a port number")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together (the certificate and its key)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)")
        if self.grpc_restricted_protocol:
            from server.restricted import parse_groups  # ValueError naming the bad group

            parse_groups(self.grpc_restricted_protocol)

    @property
    def tls(self) -> bool:
        """Whether the gRPC port speaks TLS."""
        return self.tls_cert is not None


# Environment variables of repeated flags split on ","; these groups hold commas themselves.
_SEPARATORS = {"grpc_restricted_protocol": ";"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parser() -> argparse.ArgumentParser:
    """The CLI; each flag's help names its environment variable."""
    p = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve highway-network MNIST classifiers over gRPC (highway.v1 + KServe V2).",
    )
    defaults = Settings()
    types = _types()
    for f in fields(Settings):
        doc = _DOCS.get(f.name, "")
        env = ENV_PREFIX + f.name.upper()
        kind = _optional(types[f.name])
        repeated = _repeated(kind)
        between = _SEPARATORS.get(f.name, ",")
        p.add_argument(_flag(f.name), dest=f.name, type=str if repeated else kind, default=None,
                       metavar=f.name.upper(), action="append" if repeated else "store",
                       help=f"{doc} [env {env}{f' ({between!r}-separated)' if repeated else ''}; "
                            f"default {getattr(defaults, f.name)}]")
    return p


def from_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
              ) -> Settings:
    """Settings from flags, then ``HIGHWAY_*`` variables, then defaults (ValueError if bad)."""
    environ = os.environ if environ is None else environ
    args = parser().parse_args(argv)
    values: dict[str, object] = {}
    types = _types()
    for f in fields(Settings):
        raw = getattr(args, f.name)  # already converted by the parser when given as a flag
        if raw is None:
            raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is None:
            continue
        kind = _optional(types[f.name])
        try:
            if _repeated(kind):  # repeated flag, or a separated variable
                items = raw.split(_SEPARATORS.get(f.name, ",")) if isinstance(raw, str) else raw
                values[f.name] = tuple(i.strip() for i in items if i.strip())
            elif isinstance(raw, str) and not raw and kind is Path:
                values[f.name] = None  # HIGHWAY_TLS_CERT= (empty): not set
            else:
                values[f.name] = kind(raw)
        except ValueError:
            raise ValueError(f"{_flag(f.name)}: {raw!r} is not a valid {kind.__name__}") from None
    return Settings(**values)  # type: ignore[arg-type]


def _types() -> dict[str, type]:
    """Each setting's type, resolved (the annotations may be strings): int, float, str, Path
    (each also converts a flag's or a variable's text), or tuple[str, ...] (a repeated flag).
    """
    return typing.get_type_hints(Settings)


def _optional(kind) -> type:
    """``Path | None`` → ``Path``: the type a given value converts to."""
    if isinstance(kind, types_module.UnionType) or typing.get_origin(kind) is typing.Union:
        return next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


def _repeated(kind: type) -> bool:
    return typing.get_origin(kind) is tuple


_DOCS = {
    "model_repository": "model repository folder (relative: to the working directory)",
    "host": "bind address",
    "grpc_port": "gRPC port (0: any free port)",
    "metrics_port": "Prometheus /metrics port (0: any free port, -1: off)",
    "device": "auto | cuda | cpu",
    "max_batch_size": "most images per ONNX Runtime run",
    "max_request_images": "most images per request",
    "max_queue_delay_us": "longest wait for a batch to fill, in microseconds",
    "max_queue": "most queued requests before RESOURCE_EXHAUSTED",
    "max_message_bytes": "largest gRPC message",
    "grace_period_s": "seconds to finish accepted requests on shutdown",
    "intra_op_threads": "ONNX Runtime intra-op threads per worker (0: CPU cores / workers)",
    "workers": "server processes sharing the gRPC port (SO_REUSEPORT)",
    "log_level": "DEBUG, INFO, WARNING, ERROR",
    "model_control_mode": "none | poll | explicit (Triton's model control modes)",
    "repository_poll_secs": "poll mode: seconds between repository scans",
    "load_model": "explicit mode: a model to load at start (repeatable; * = all)",
    "gate_metrics": "1: gate activity histograms and drift; 0: off",
    "drift_window": "images per model version in the drift window",
    "drift_interval_s": "seconds between drift recomputations",
    "drift_threshold": "drift score (largest layer PSI) counted as drift",
    "tls_cert": "PEM certificate (chain) of the gRPC port; turns TLS on (with --tls-key); "
                "replaced files are served to new connections",
    "tls_key": "PEM private key of --tls-cert",
    "tls_client_ca": "PEM CA bundle; clients must present a certificate it signed (mutual TLS)",
    "grpc_restricted_protocol": "CATEGORY[,CATEGORY...]:KEY=VALUE, repeatable: calls of these "
                                "categories need header KEY with VALUE (as Triton's option)",
    "metrics_host": "bind address of /metrics (empty: the same as --host)",
    "max_connections": "most open connections; past it new ones are closed",
    "max_concurrent_streams": "most concurrent calls per connection (HTTP/2)",
    "max_metadata_bytes": "largest header block of a call",
}
