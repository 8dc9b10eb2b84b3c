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

import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort

from bench import report
from bench.harness import (
    METHODS,
    ServerProcess,
    floor_server,
    naive_server,
    real_server,
    request_bytes,
)
from bench.load import ClientPool, Scenario, percentiles
from bench.profiler import Profiler
from bench.raw import RawBench
from bench.settings import BenchSettings, connections, parse
from highway_core import provenance
from highway_core.facts import IMAGE_SHAPE
from server.errors import StartupError

log = logging.getLogger("bench")


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
        spy = Profiler(s.profile_dir if name == "real" else None, server, sc, s.duration_s)
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


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; exit 1 with a one-line message if it cannot."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s bench: %(message)s", datefmt="%H:%M:%S")
    s = parse(argv, __doc__)
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
