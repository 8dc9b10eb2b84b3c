"""``python -m bench``: the server against raw ONNX Runtime and a naive server.

One run, one model, one machine:
1. raw in-process ONNX Runtime at batch 1, 8, 64 (the server's session options);
2. the real server (subprocess) under closed-loop load from several client
   processes, single-image and 64-image requests, over Predict and ModelInfer,
   and single images over their bidirectional streams (PredictStream,
   ModelStreamInfer) with several requests in flight per stream;
   with ``--workers 1,2`` once per worker count ("real", "real-w2");
3. the same load against a naive server (one ORT run per request, no batching);
4. the same load against the gRPC floor: the same Python gRPC stack answering
   canned responses with no model, i.e. what gRPC and the load generator alone
   cost on this machine, from which a ceiling for any Python gRPC server follows;
5. raw ONNX Runtime again; the ratios use the median of all raw slices.
Prints a table, writes JSON (``--out``) and a PNG beside it. ``--quick`` is a
seconds-long smoke run. Figures, never assertions: targets are reported as met
or not, and the exit code is 0 either way (1 only if the run itself failed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort

from bench import report
from bench.harness import (
    METHODS,
    STREAMS,
    ServerProcess,
    floor_server,
    naive_server,
    real_server,
    request_bytes,
)
from bench.load import ClientPool, Scenario, percentiles
from bench.raw import RawBench
from highway_core import provenance
from highway_core.facts import IMAGE_SHAPE, MODEL_NAME
from server.errors import StartupError
from server.settings import default_repository

log = logging.getLogger("bench")


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


def _model_file(repository: Path, model: str) -> Path:
    versions = [p for p in (repository / model).glob("*") if p.name.isdigit()
                and (p / "model.onnx").is_file()]
    if not versions:
        raise FileNotFoundError(f"no {model}/<version>/model.onnx in {repository}")
    return max(versions, key=lambda p: int(p.name)) / "model.onnx"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when under it (results carry no
    machine paths), else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _images(n: int) -> np.ndarray:
    """Deterministic digit-like test images (MNIST statistics: mostly black, bright strokes)."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, *IMAGE_SHAPE), dtype=np.uint8)
    images[:, 6:22, 10:18] = rng.integers(0, 256, size=(n, 16, 8), dtype=np.uint8)
    return images


def _machine() -> dict:
    return {"cpu": provenance.cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "onnxruntime": ort.__version__,
            "grpcio": grpc.__version__}


def _scenarios(s: BenchSettings, server: str) -> list[Scenario]:
    unary = [Scenario(api, images, c) for images, c in s.loads for api in s.apis]
    if server == "naive":  # one ORT run per request is all it does: no streams
        return unary
    return unary + [Scenario(api, images, c, depth=s.stream_depth)
                    for images, c in s.stream_loads for api in s.stream_apis]


class _Profiler:
    """The server's CPU seconds over one measuring window, and a py-spy flame graph of it
    (when a folder is given and py-spy is installed)."""

    def __init__(self, folder: Path | None, server: ServerProcess, sc: Scenario, seconds: float):
        self.server = server
        self.cpu: list[float | None] = []
        self.proc: subprocess.Popen | None = None
        self.command: list[str] | None = None
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if folder is None or not Path(spy).exists():
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.out = folder / f"{sc.api}-{sc.images}img-c{sc.concurrency}.svg"
        self.spy = spy
        self.command = [spy, "record", "--pid", str(server.proc.pid), "--duration",
                        str(max(1, int(seconds))), "--rate", "200", "--nonblocking",
                        "--threads", "-o", str(self.out)]

    def start(self) -> None:
        self.cpu.append(self.server.cpu_seconds())
        if self.command is not None:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.cpu.append(self.server.cpu_seconds())

    def wait(self) -> tuple[float | None, float | None]:
        """Waits for py-spy; returns the server's CPU seconds at window start and end."""
        if self.proc is not None:
            if self.proc.wait(60) != 0:
                log.info("py-spy failed (exit %s)", self.proc.returncode)
            elif self.out.exists():  # the title names the command: no machine paths in it
                self.out.write_text(self.out.read_text().replace(self.spy, "py-spy"))
        return self.cpu[0], self.cpu[1]


def connections(s: BenchSettings) -> int:
    """Connections per client process (0: one per client); see BenchSettings.connections."""
    if s.connections:
        return s.connections
    return 1 if max(s.workers) == 1 else 0


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _real_name(workers: int) -> str:
    return "real" if workers == 1 else f"real-w{workers}"


def _drive(name: str, server: ServerProcess, pool: ClientPool, s: BenchSettings,
           images: np.ndarray) -> list[dict]:
    rows = []
    for sc in _scenarios(s, name):
        payload = request_bytes(sc.api, s.model, images[:sc.images])
        spy = _Profiler(s.profile_dir if name == "real" else None, server, sc, s.duration_s)
        result, window = pool.run(server.target, sc, payload, s.warmup_s, s.duration_s,
                                  on_start=spy.start, on_end=spy.stop,
                                  connections=connections(s),
                                  transport=server.transport)
        cpu0, cpu1 = spy.wait()
        done = len(result.latencies)
        ips = done * sc.images / window
        row = {"server": name, "api": sc.api, "images": sc.images, "concurrency": sc.concurrency,
               "requests": done, "images_per_s": ips, **percentiles(result.latencies),
               "errors": sum(result.errors.values()), "error_codes": result.errors,
               "answers_checked": result.checked, "connections": result.connections,
               "rss_mb": server.rss_mb()}
        # CPU per image is where the time goes: server, client, and (from raw) the model.
        total_images = max(done * sc.images, 1)
        window_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
        row["server_cpu_us_per_image"] = (window_cpu * 1e6 / total_images
                                          if window_cpu is not None else None)
        row["client_cpu_us_per_image"] = result.cpu_s * 1e6 / total_images
        rows.append(row)
        p50 = row["p50_ms"]
        log.info("%-5s %-10s %2d img x c=%-2d  %8.0f img/s  p50 %s ms  errors %d", name,
                 sc.api, sc.images, sc.concurrency, ips,
                 f"{p50:.2f}" if p50 is not None else "-", row["errors"])
    return rows


def run(s: BenchSettings) -> dict:
    """The whole benchmark; returns the JSON-ready result."""
    model_path = _model_file(s.repository, s.model)
    images = _images(max([64, *s.raw_batches, *(n for n, _ in (*s.loads, *s.stream_loads))]))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="highway-bench-"))
    raw = RawBench(model_path, s.device, s.intra_op_threads, s.raw_batches, images)
    servers = {}
    for workers in s.workers:
        extra = [*s.server_args, *(("--workers", str(workers)) if workers != 1 else ())]
        servers[_real_name(workers)] = real_server(
            s.repository, s.device, s.intra_op_threads, extra,
            logs / f"{_real_name(workers)}.log",
            tls_folder=_folder(logs / f"{_real_name(workers)}-tls") if s.tls else None)
    if s.naive:
        servers["naive"] = naive_server(model_path, s.device, s.intra_op_threads,
                                        s.naive_workers, logs / "naive.log")
    if s.floor:
        servers["floor"] = floor_server(logs / "floor.log")
    rows: list[dict] = []
    try:
        probe = request_bytes("ModelInfer", s.model, images[:1])
        for name, server in servers.items():
            server.wait_ready(METHODS["ModelInfer"], probe)
            if name.startswith("real"):  # one worker answering is not all of them loaded
                server.wait_serving()
        log.info("servers ready (%s); raw ONNX Runtime before", ", ".join(servers))
        slices = max(1, round(s.raw_seconds))
        raw.measure(s.raw_seconds / 2, slices, log=log.info)
        with ClientPool(s.client_processes) as pool:
            for name, server in servers.items():
                rows += _drive(name, server, pool, s, images)
        log.info("raw ONNX Runtime after")
        raw.measure(s.raw_seconds / 2, slices, log=log.info)
    finally:
        exits = {name: server.stop() for name, server in servers.items()}
        raw.close()
    shutil.rmtree(logs, ignore_errors=True)  # server logs are kept only when the run failed
    result = {
        "date": started, "machine": _machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "model": _shown(model_path),
        "model_bytes": model_path.stat().st_size, "provider": raw.provider,
        "settings": {k: (_shown(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MALLOC_ARENA_MAX")
                if k in os.environ},
        "raw": {str(b): r.summary() for b, r in raw.results.items()},
        "runs": rows, "server_exit_codes": exits,
    }
    report.add_ratios(result)
    return result


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


def parse(argv: list[str] | None = None) -> BenchSettings:
    """Settings from the command line."""
    d = BenchSettings()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
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


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; exit 1 with a one-line message if it cannot."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s bench: %(message)s", datefmt="%H:%M:%S")
    s = parse(argv)
    try:
        result = run(s)
    except (FileNotFoundError, RuntimeError, StartupError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    print(report.table(result))
    if s.out is not None:
        s.out.parent.mkdir(parents=True, exist_ok=True)
        s.out.write_text(json.dumps(result, indent=2) + "\n")
        log.info("wrote %s", s.out)
        try:
            report.plot(result, s.out.with_suffix(".png"))
            log.info("wrote %s", s.out.with_suffix(".png"))
        except ImportError:  # matplotlib comes with the train extra only
            log.info("no matplotlib: no PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
