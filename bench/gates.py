"""``python -m bench.gates``: what the gate metrics cost, A/B on one run.

Two real servers on the same model, one with ``--gate-metrics 1`` (histogram and drift
window), one with ``--gate-metrics 0``, both scraped every ``--scrape-s`` like
Prometheus would. Rounds alternate A, B, A, B... under the same closed-loop load
(single images at c=16 by default), so a change in the machine's background load
hits both alike; the result is each pair's throughput ratio, with its spread.
Writes a JSON report (default docs/perf/gates_ab.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import threading
import urllib.request
from pathlib import Path

import numpy as np

from bench.harness import METHODS, real_server, request_bytes
from bench.load import ClientPool, Scenario, percentiles
from highway_core import provenance
from highway_core.facts import GATE_ACTIVITY, MODEL_NAME
from server.settings import default_repository


def observer_cost(repository: Path, calls: int = 3000) -> dict:
    """CPU time (this thread's, so other load on the machine does not count) of one
    ``observe`` per model run, by batch size, and of one drift recomputation."""
    import time

    from highway_core import drift
    from server.gates import GateMonitor

    folder = repository / MODEL_NAME / "1"
    reference = drift.read(folder / drift.FILENAME)
    rng = np.random.default_rng(0)
    monitor = GateMonitor(window=1000, interval_s=0.0, threshold=0.1)
    monitor.add("m", 1, reference.names, reference)
    observe = monitor.observer("m", 1)
    per_run = {}
    for batch in (1, 2, 4, 8, 16, 64):
        outputs = {GATE_ACTIVITY: rng.uniform(0.3, 0.56, (batch, len(reference.names)))
                   .astype(np.float32)}
        observe(outputs)
        start = time.thread_time_ns()
        for _ in range(calls):
            observe(outputs)
        per_run[str(batch)] = (time.thread_time_ns() - start) / calls / 1e3
    start = time.thread_time_ns()
    for _ in range(50):
        list(monitor.collect())
    return {"observe_cpu_us_per_run_by_batch": per_run,
            "scrape_with_drift_cpu_us": (time.thread_time_ns() - start) / 50 / 1e3}


def _scraper(ports: list[int], every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    r.read()
            except OSError:
                pass


def run(args: argparse.Namespace) -> dict:
    images = np.random.default_rng(0).integers(0, 256, (args.images, 28, 28), dtype=np.uint8)
    scenario = Scenario(args.api, args.images, args.concurrency)
    payload = request_bytes(args.api, MODEL_NAME, images)
    servers = {flag: real_server(args.model_repository, "cpu", args.threads,
                                 ["--gate-metrics", flag], None) for flag in ("1", "0")}
    stop = threading.Event()
    rounds: list[dict] = []
    try:
        for server in servers.values():
            server.wait_ready(METHODS[args.api], payload)
        scraper = threading.Thread(target=_scraper, daemon=True, args=(
            [s.metrics_port for s in servers.values()], args.scrape_s, stop))
        scraper.start()
        with ClientPool(args.clients) as pool:
            for i in range(args.rounds):
                order = ("1", "0") if i % 2 == 0 else ("0", "1")  # ABBA: no position bias
                for flag in order:
                    server = servers[flag]
                    cpu0 = server.cpu_seconds()
                    result, window = pool.run(server.target, scenario, payload, args.warmup_s,
                                              args.duration_s)
                    cpu1 = server.cpu_seconds()
                    done = len(result.latencies) * args.images
                    rounds.append({"round": i, "gate_metrics": int(flag),
                                   "images_per_s": done / window,
                                   "server_cpu_us_per_image": (cpu1 - cpu0) * 1e6 / max(done, 1),
                                   "errors": sum(result.errors.values()),
                                   **percentiles(result.latencies)})
                    print(f"round {i} gate_metrics={flag}: {done / window:7.0f} img/s", flush=True)
    finally:
        stop.set()
        for server in servers.values():
            server.stop()
    ratios = [on["images_per_s"] / off["images_per_s"] for on, off in (
        (next(r for r in rounds if r["round"] == i and r["gate_metrics"] == 1),
         next(r for r in rounds if r["round"] == i and r["gate_metrics"] == 0))
        for i in range(args.rounds))]
    cpu = {flag: statistics.median(r["server_cpu_us_per_image"] for r in rounds
                                   if r["gate_metrics"] == flag) for flag in (0, 1)}
    return {
        "what": "throughput with gate metrics on / off, interleaved rounds",
        "scenario": {"api": args.api, "images": args.images, "concurrency": args.concurrency},
        "rounds": rounds, "ratio_on_over_off": ratios,
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "server_cpu_us_per_image_median": {"on": cpu[1], "off": cpu[0]},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
    }


def _machine() -> str:
    import os

    cpu = provenance.cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at the start"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gates", description=__doc__)
    p.add_argument("--model-repository", type=Path, default=default_repository())
    p.add_argument("--api", choices=tuple(METHODS), default="Predict")
    p.add_argument("--images", type=int, default=1, help="images per request")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rounds", type=int, default=6, help="A/B pairs")
    p.add_argument("--duration-s", type=float, default=5.0, help="measuring window per round")
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--clients", type=int, default=2, help="client processes")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads")
    p.add_argument("--scrape-s", type=float, default=5.0, help="/metrics scrape period")
    p.add_argument("--out", type=Path, default=Path("docs/perf/gates_ab.json"))
    p.add_argument("--micro-only", action="store_true",
                   help="only the per-run CPU cost of the observer (no servers, seconds)")
    args = p.parse_args(argv)
    micro = observer_cost(args.model_repository)
    print(json.dumps(micro), flush=True)
    if args.micro_only:
        report = {"what": "CPU time of the gate observer per model run, and of one scrape",
                  "observer": micro, "machine": _machine(),
                  "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out}")
        return 0
    report = run(args)
    report["observer"] = micro
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"on/off throughput: median {report['ratio_median']:.3f} "
          f"(min {report['ratio_min']:.3f}, max {report['ratio_max']:.3f}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
