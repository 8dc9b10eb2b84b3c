"""The benchmark's settings: typed, defaulted, and parsed from ``python -m bench``'s
command line (see ``bench/__main__.py`` for what a run measures)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.harness import METHODS, STREAMS
from highway_core.facts import MODEL_NAME
from server.settings import default_repository


@dataclass(frozen=True)
class BenchSettings:
    """What one benchmark run measures and how long."""

    repository: Path = field(default_factory=default_repository)
    """Model repository (Triton layout) the server loads."""
    model: str = MODEL_NAME
    """Model name; its highest version is benchmarked."""
    device: str = "cpu"
    """ONNX Runtime device for raw ORT and both servers."""
    intra_op_threads: int = 0
    """ONNX Runtime intra-op threads everywhere (0: one per core), as the server's default."""
    loads: tuple[tuple[int, int], ...] = ((1, 1), (1, 4), (1, 16), (64, 1), (64, 4))
    """(images per request, concurrency) pairs, each run over every API."""
    apis: tuple[str, ...] = ("ModelInfer", "Predict")
    """APIs to drive."""
    stream_loads: tuple[tuple[int, int], ...] = ((1, 1), (1, 16))
    """(images per request, requests in flight) pairs, each run over every stream API
    (real server and gRPC floor; the naive server has no streams)."""
    stream_apis: tuple[str, ...] = ("ModelStreamInfer", "PredictStream")
    """Bidirectional-stream APIs to drive."""
    stream_depth: int = 8
    """Most requests in flight on one stream (more in flight: more streams)."""
    raw_batches: tuple[int, ...] = (1, 8, 64)
    """Batch sizes for raw ONNX Runtime."""
    raw_seconds: float = 6.0
    """Raw ORT seconds per batch size, split before and after the servers."""
    warmup_s: float = 2.0
    """Load before each measuring window (not counted)."""
    duration_s: float = 10.0
    """Measuring window per scenario."""
    client_processes: int = 2
    """Load-generator processes sharing each scenario's clients."""
    naive: bool = True
    """Also measure the naive server."""
    naive_workers: int = 16
    """Naive server's gRPC handler threads."""
    floor: bool = True
    """Also measure the gRPC floor (Python gRPC answering canned responses, no model)."""
    workers: tuple[int, ...] = (1,)
    """``--workers`` of the real server: one server and one set of runs per count."""
    connections: int = 0
    """gRPC connections per client process (0: one when only --workers 1 is measured,
    else one per client, for SO_REUSEPORT hands connections, not calls, to workers)."""
    server_args: tuple[str, ...] = ()
    """Extra flags for ``python -m server`` (e.g. --max-queue-delay-us 0)."""
    out: Path | None = None
    """JSON result file (a PNG is written beside it)."""
    profile_dir: Path | None = None
    """Folder for py-spy flame graphs of the real server, one per scenario (needs py-spy)."""
    tls: bool = False
    """The real server and its clients speak TLS (a throw-away certificate)."""


QUICK = dict(loads=((1, 2), (8, 2)), stream_loads=((1, 2),), raw_batches=(1, 8),
             raw_seconds=0.4, warmup_s=0.1, duration_s=0.3)


def connections(s: BenchSettings) -> int:
    """Connections per client process (0: one per client); see BenchSettings.connections."""
    if s.connections:
        return s.connections
    return 1 if max(s.workers) == 1 else 0



def _loads(text: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(x) for x in part.split("x")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected IMAGESxCONCURRENCY,...") from None
    if any(len(p) != 2 or min(p) < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: expected IMAGESxCONCURRENCY,...")
    return pairs  # type: ignore[return-value]


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected counts like 1,2") from None
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected distinct counts >= 1, like 1,2")
    return counts


def parse(argv: list[str] | None = None, description: str | None = None) -> BenchSettings:
    """Settings from the command line; ``description`` heads ``--help``."""
    d = BenchSettings()
    p = argparse.ArgumentParser(prog="python -m bench", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repository", type=Path, default=d.repository, help="model repository")
    p.add_argument("--model", default=d.model, help="model name")
    p.add_argument("--device", default=d.device, help="cpu | cuda | auto")
    p.add_argument("--intra-op-threads", type=int, default=d.intra_op_threads)
    p.add_argument("--loads", type=_loads, default=None,
                   help="IMAGESxCONCURRENCY list, e.g. 1x1,1x16,64x4")
    p.add_argument("--apis", default=",".join(d.apis), help="ModelInfer,Predict")
    p.add_argument("--stream-loads", type=_loads, default=None,
                   help="IMAGESxIN_FLIGHT list for the stream APIs, e.g. 1x1,1x16")
    p.add_argument("--stream-apis", default=",".join(d.stream_apis),
                   help="ModelStreamInfer,PredictStream (empty: no stream loads)")
    p.add_argument("--stream-depth", type=int, default=d.stream_depth,
                   help="most requests in flight on one stream")
    p.add_argument("--duration", type=float, default=None, help="seconds measured per scenario")
    p.add_argument("--warmup", type=float, default=None, help="seconds of load before each")
    p.add_argument("--raw-seconds", type=float, default=None, help="raw ORT seconds per batch")
    p.add_argument("--client-processes", type=int, default=d.client_processes)
    p.add_argument("--workers", type=_counts, default=d.workers,
                   help="--workers of the real server, one run per count, e.g. 1,2")
    p.add_argument("--connections", type=int, default=d.connections,
                   help="gRPC connections per client process (0: one per client when "
                        "--workers measures more than 1, else 1)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive server")
    p.add_argument("--no-floor", action="store_true", help="skip the gRPC floor (no model)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra flag for python -m server (repeatable, e.g. "
                        "--server-arg=--max-queue-delay-us=0)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="record a py-spy flame graph of the real server per scenario into DIR")
    p.add_argument("--tls", action="store_true",
                   help="the real server speaks TLS (throw-away certificate) and so do its "
                        "clients; the naive server and the floor stay plain text")
    p.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    p.add_argument("--out", type=Path, default=None, help="JSON result file (PNG beside it)")
    a = p.parse_args(argv)
    apis = tuple(x for x in a.apis.split(",") if x)
    if not apis or any(x not in METHODS for x in apis):
        p.error(f"--apis must name {' and/or '.join(METHODS)}")
    stream_apis = tuple(x for x in a.stream_apis.split(",") if x)
    if any(x not in STREAMS for x in stream_apis):
        p.error(f"--stream-apis must name {' and/or '.join(STREAMS)} (or nothing)")
    if a.stream_depth < 1:
        p.error("--stream-depth must be at least 1")
    if a.client_processes < 1:
        p.error("--client-processes must be at least 1")
    if a.connections < 0:
        p.error("--connections must not be negative")
    s = replace(d, repository=a.repository, model=a.model, device=a.device,
                intra_op_threads=a.intra_op_threads, apis=apis, stream_apis=stream_apis,
                stream_depth=a.stream_depth, client_processes=a.client_processes,
                workers=a.workers, connections=a.connections, naive=not a.no_naive,
                floor=not a.no_floor,
                server_args=tuple(a.server_arg), out=a.out, profile_dir=a.profile, tls=a.tls)
    if a.quick:
        s = replace(s, **QUICK)
    overrides = {"loads": a.loads, "stream_loads": a.stream_loads, "duration_s": a.duration,
                 "warmup_s": a.warmup, "raw_seconds": a.raw_seconds}
    return replace(s, **{k: v for k, v in overrides.items() if v is not None})
