"""``python -m deploy.dashboard_png``: the Grafana dashboard's queries, drawn from a real run.

Grafana cannot run here, so this draws what the dashboard would show: it starts the
server (shipped model) and a real Prometheus scraping it every second, sends real
MNIST test images for a while, then the same images inverted (drift) plus some
refused requests, and evaluates every panel query of ``deploy/grafana/highway.json``
over the run with Prometheus's range API. Writes ``docs/monitoring/dashboard.png``.
All traffic goes to 127.0.0.1 and is bounded in time.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import grpc
import numpy as np

from bench.harness import real_server
from deploy import queries
from deploy.prometheus_run import Prometheus
from deploy.prometheus_run import binary as prometheus_binary
from protos.highway.v1 import classifier_pb2 as hw
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from server.settings import default_repository


def _load(target: str, images: np.ndarray, until: float, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with grpc.insecure_channel(target) as channel:
        stub = hw_grpc.ClassifierStub(channel)
        while time.monotonic() < until:
            pick = images[rng.integers(0, len(images), rng.integers(1, batch + 1))]
            try:
                stub.Predict(hw.PredictRequest(images=[x.tobytes() for x in pick]), timeout=10)
                if rng.random() < 0.02:  # a broken client now and then
                    stub.Predict(hw.PredictRequest(images=[b"short"]), timeout=10)
            except grpc.RpcError:
                pass


def traffic(target: str, phases: list[tuple[np.ndarray, float]], clients: int) -> None:
    for images, seconds in phases:
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=_load, args=(target, images, until, 8, i))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def plot(prom: Prometheus, start: float, end: float, path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = queries.dashboard_targets()
    panels = list(dict.fromkeys(t["panel"] for t in targets if t["type"] != "heatmap"))
    layers = sorted({s["metric"]["layer"] for s in prom.query("highway_gate_activity_count")})
    cols = 4
    rows = -(-len(panels) // cols) + -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, title in zip(axes.flat, panels, strict=False):
        ax.set_visible(True)
        for t in (t for t in targets if t["panel"] == title):
            expr = queries.substitute(t["expr"], rate="10s")
            for series in prom.api("query_range", query=expr, start=start, end=end,
                                   step=2)["result"]:
                x = np.array([float(v[0]) - start for v in series["values"]])
                y = np.array([float(v[1]) for v in series["values"]])
                label = t["legend"]
                for key, value in series["metric"].items():
                    label = label.replace("{{" + key + "}}", value)
                ax.plot(x, y, label=label, lw=1.2)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
        ax.grid(alpha=0.3)
    heat = next(t for t in targets if t["type"] == "heatmap")
    for ax, layer in zip(axes.flat[-(-len(panels) // cols) * cols:], layers, strict=False):
        ax.set_visible(True)
        expr = queries.substitute(heat["expr"], rate="10s", layer=layer)
        result = prom.api("query_range", query=expr, start=start, end=end, step=5)["result"]
        edges = sorted(float(s["metric"]["le"]) for s in result)
        by_le = {float(s["metric"]["le"]): s["values"] for s in result}
        times = [float(v[0]) - start for v in by_le[edges[0]]]
        cumulative = np.array([[float(v[1]) for v in by_le[e]] for e in edges])
        counts = np.diff(cumulative, axis=0, prepend=0)
        used = np.flatnonzero(counts.sum(axis=1) > 0)
        lo, hi = max(used.min() - 1, 0), min(used.max() + 1, len(edges) - 1)
        ax.imshow(counts[lo:hi + 1], aspect="auto", origin="lower", cmap="viridis",
                  extent=(times[0], times[-1], 0, hi - lo + 1))
        ticks = range(0, hi - lo + 1, max(1, (hi - lo) // 5))
        ax.set_yticks([t + 0.5 for t in ticks], [f"≤{edges[lo + t]:g}" for t in ticks],
                      fontsize=6)
        ax.set_title(f"Gate activity: {layer}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Dashboard queries evaluated by Prometheus over a real run ({note}); "
                 "x: seconds", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.dashboard_png", description=__doc__)
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder ($HIGHWAY_DATA_DIR)")
    p.add_argument("--model-repository", type=Path, default=default_repository())
    p.add_argument("--normal-s", type=float, default=60, help="seconds of MNIST test images")
    p.add_argument("--shifted-s", type=float, default=40, help="seconds of inverted images")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("docs/monitoring/dashboard.png"))
    args = p.parse_args(argv)
    from training.data import MnistDataError, load_mnist

    try:
        images = load_mnist(args.data_dir).x_test
        binary_missing = prometheus_binary() is None
    except MnistDataError as e:
        p.exit(1, f"dashboard_png: error: {e}\n")
    if binary_missing:
        p.exit(1, "dashboard_png: error: prometheus is not installed (set $PROMETHEUS or "
               "put it on PATH)\n")
    server = real_server(args.model_repository, "cpu", 0,
                         ["--drift-window", "500", "--drift-interval-s", "1"], None)
    try:
        server.wait_ready("/highway.v1.Classifier/Predict",
                          hw.PredictRequest(images=[images[0].tobytes()]).SerializeToString())
        with Prometheus([f"127.0.0.1:{server.metrics_port}"], interval_s=1.0) as prom:
            start = time.time()
            traffic(server.target, [(images, args.normal_s), (255 - images, args.shifted_s)],
                    args.clients)
            time.sleep(3)
            plot(prom, start, time.time(), args.out,
                 f"{args.normal_s:.0f} s of MNIST test images, then {args.shifted_s:.0f} s "
                 f"inverted; {args.clients} clients, drift window 500")
    finally:
        server.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
