"""``python -m export.quantize_study``: int8 recipes against fp32, accuracy and raw speed.

Each recipe quantizes the fp32 model (calibrated on the first training images)
and is scored on the validation images (the last 5,000 training images, the
ones training selected its epoch on) — the shipped recipe is chosen there, never
on the test set. Test accuracy on all 10,000 images is reported beside it.
Speed: raw ONNX Runtime, the server's session options, fp32 and every int8
variant measured in turns (round-robin slices) in the same run, so that the
ratios survive a machine that other work keeps busy. Writes JSON + PNG.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from export import quantize
from export.quantize import Recipe
from highway_core import provenance
from highway_core.facts import SHIPPED_FP32_VERSION, shipped_model

ROOT = Path(__file__).resolve().parents[1]
ACCURACY_BAR = 0.001  # a recipe qualifies if it loses at most 0.1 point of validation accuracy
RECIPES = (
    Recipe("ort-default-u8s8", all_ops=True),  # ORT's defaults: every op, uint8 activations
    Recipe("u8s8-qdq-minmax"),
    Recipe("s8s8-qdq-minmax", activations="int8"),
    Recipe("u8s8-qoperator-minmax", quant_format="QOperator"),
    Recipe("s8s8-qdq-entropy", activations="int8", calibration="Entropy"),
    Recipe("s8s8-qdq-percentile", activations="int8", calibration="Percentile"),
    Recipe("s8s8-qdq-minmax-gate-inputs", activations="int8", gate_inputs=True),
    Recipe("u8s7-qdq-minmax", reduce_range=True),
    Recipe("u8s7-qoperator-minmax", quant_format="QOperator", reduce_range=True),
)
BATCHES = (1, 8, 64)
VALIDATION = 5000  # the last training images, as training's --val-size


def session(path: Path):
    """A CPU session with the server's options (server.runtime; export may not import it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def outputs(sess, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    runs = [sess.run(["probabilities", "gate_activity"], {"images": x[i:i + 500]})
            for i in range(0, len(x), 500)]
    return np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])


def scores(sess, ref: dict, x: np.ndarray, y: np.ndarray, split: str) -> dict:
    """Accuracy on ``split`` and agreement with the fp32 outputs in ``ref[split]``."""
    p, g = outputs(sess, x)
    out = {f"{split}_accuracy": float(np.mean(p.argmax(1) == y))}
    if split in ref:
        p0, g0 = ref[split]
        out[f"{split}_top1_agreement"] = float(np.mean(p.argmax(1) == p0.argmax(1)))
        out[f"{split}_max_abs_diff_gate_activity"] = float(np.max(np.abs(g - g0)))
        out[f"{split}_max_abs_diff_probabilities"] = float(np.max(np.abs(p - p0)))
    else:
        ref[split] = (p, g)
    return out


def timings(sessions: dict, images: np.ndarray, slice_s: float, rounds: int) -> dict:
    """Median images/s of each session at each batch, slices taken in turns."""
    ips: dict = {name: {b: [] for b in BATCHES} for name in sessions}
    for _ in range(rounds):
        for batch in BATCHES:
            feed = {"images": np.ascontiguousarray(images[:batch])}
            for name, sess in sessions.items():
                sess.run(None, feed)  # warm
                calls, begin = 0, time.perf_counter()
                while (now := time.perf_counter()) - begin < slice_s or calls == 0:
                    sess.run(None, feed)
                    calls += 1
                ips[name][batch].append(calls * batch / (now - begin))
    return {name: {str(b): statistics.median(v) for b, v in per.items()}
            for name, per in ips.items()}


def run(fp32: Path, data_dir: str | None, calibration: int, slice_s: float, rounds: int,
        command: str,
        log=lambda line: print(line, flush=True)) -> dict:
    import onnxruntime

    from training.data import load_mnist

    load_before = os.getloadavg()  # recorded: a busy machine makes the speeds noise
    data = load_mnist(data_dir)
    x_val, y_val = data.x_train[-VALIDATION:], data.y_train[-VALIDATION:]
    calib = data.x_train[:calibration]  # the fit part: neither validation nor test
    ref: dict = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="quantize-study-") as tmp:
        sessions = {"fp32": session(fp32)}
        base = {"recipe": "fp32", **scores(sessions["fp32"], ref, x_val, y_val, "validation"),
                **scores(sessions["fp32"], ref, data.x_test, data.y_test, "test")}
        rows.append(base)
        for recipe in RECIPES:
            path = Path(tmp) / f"{recipe.name}.onnx"
            start = time.perf_counter()
            what = quantize.quantize(fp32, path, calib, recipe)
            sess = sessions[recipe.name] = session(path)
            row = {"recipe": recipe.name, "settings": recipe.__dict__, "quantized": what,
                   "quantize_s": round(time.perf_counter() - start, 1),
                   **scores(sess, ref, x_val, y_val, "validation"),
                   **scores(sess, ref, data.x_test, data.y_test, "test")}
            rows.append(row)
            log(f"{recipe.name}: {what['weight_ops_int8']}/{what['weight_ops']} int8 weight ops, "
                f"validation {row['validation_accuracy']:.4f} "
                f"(fp32 {base['validation_accuracy']:.4f}), test {row['test_accuracy']:.4f}")
        log(f"timing {len(sessions)} models at batches {BATCHES}, {rounds} rounds")
        speed = timings(sessions, x_val, slice_s, rounds)
    for row in rows:
        ips = speed[row["recipe"]]
        row["images_per_s"] = ips
        row["speedup_vs_fp32"] = {b: ips[b] / speed["fp32"][b] for b in ips}
    chosen = choose(rows)
    return {
        "what": "int8 post-training quantization recipes vs fp32: accuracy and raw ONNX "
                "Runtime images/s (server session options, CPU), measured in turns in one run",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": provenance.cpu_model(), "cores": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg(),
                    "note": "compare ratios within this run only"},
        "fp32_model": _display(fp32), "data": Path(data.source).name,
        "calibration": f"first {len(calib)} training images",
        "selection": f"validation accuracy on the last {VALIDATION} training images",
        "rule": f"of the recipes with 7-bit weights (the same answers on CPUs with and "
                f"without VNNI), the fastest (geometric mean speed-up over batches {BATCHES}) "
                f"within {ACCURACY_BAR:.1%} of fp32's validation accuracy, else the most "
                f"accurate on validation",
        "chosen_on_validation": chosen,
        "command": command,
        "onnxruntime": onnxruntime.__version__,
        "timing": {"slice_s": slice_s, "rounds": rounds, "statistic": "median slice"},
        "results": rows,
    }


def choose(rows: list[dict]) -> str:
    """The shipped recipe: portability, validation accuracy and speed (never the test set).

    Only recipes with 7-bit weights compete while there are any: their int8 sums cannot
    saturate on an x86 CPU without VNNI, so the file answers alike on every CPU, and the
    accuracy measured on this one holds on the next.
    """
    fp32 = rows[0]["validation_accuracy"]
    candidates = [r for r in rows[1:] if r["settings"].get("reduce_range")] or rows[1:]
    ok = [r for r in candidates if r["validation_accuracy"] >= fp32 - ACCURACY_BAR - 1e-9]
    if not ok:
        return max(candidates, key=lambda r: r["validation_accuracy"])["recipe"]
    return max(ok, key=lambda r: float(np.prod(list(r["speedup_vs_fp32"].values()))))["recipe"]


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def figure(report: dict, path: Path) -> None:
    """Left: validation/test accuracy per recipe. Right: speed-up vs fp32 per batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    names = [r["recipe"] for r in rows]
    y = np.arange(len(rows))
    fig, (acc, speed) = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 2), sharey=True)
    for offset, split in ((-0.2, "validation"), (0.2, "test")):
        acc.barh(y + offset, [100 * r[f"{split}_accuracy"] for r in rows], 0.4, label=split)
    low = min(100 * r[f"{s}_accuracy"] for r in rows for s in ("validation", "test"))
    acc.set(xlim=(low - 0.1, 100), xlabel="accuracy %", yticks=y, yticklabels=names)
    acc.legend(fontsize=8)
    for i, batch in enumerate(BATCHES):
        speed.barh(y + (i - 1) * 0.27, [r["speedup_vs_fp32"][str(batch)] for r in rows],
                   0.27, label=f"batch {batch}")
    speed.axvline(1, color="black", linewidth=0.8)
    speed.set(xlabel="raw ORT images/s ÷ fp32 (same run)")
    speed.legend(fontsize=8)
    acc.axvline(100 * (rows[0]["validation_accuracy"] - ACCURACY_BAR), color="tab:red",
                linestyle="--", linewidth=0.8)
    for ax in (acc, speed):
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"int8 recipes vs fp32 ({report['date'][:10]}, {report['machine']['cpu']}, "
                 f"busy); chosen on validation: {report['chosen_on_validation']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.quantize_study", description=__doc__
                                .splitlines()[0].split(": ", 1)[1])
    p.add_argument("--model", type=Path, default=ROOT / shipped_model())
    p.add_argument("--data-dir", default=None, help="full MNIST IDX folder (default: "
                   "$HIGHWAY_DATA_DIR, else Keras' downloader)")
    p.add_argument("--calibration-images", type=int, default=quantize.CALIBRATION_IMAGES)
    p.add_argument("--slice-s", type=float, default=0.5, help="seconds per timing slice")
    p.add_argument("--rounds", type=int, default=5, help="timing slices per model and batch")
    p.add_argument("--out", type=Path,
                   default=ROOT / f"docs/perf/int8_v{SHIPPED_FP32_VERSION}.json")
    a = p.parse_args(argv)
    if not a.model.is_file():
        print(f"quantize_study: error: model not found: {a.model}", file=sys.stderr)
        return 1
    if a.calibration_images < 1 or a.rounds < 1 or a.slice_s <= 0:
        print("quantize_study: error: --calibration-images, --rounds and --slice-s must be "
              "positive", file=sys.stderr)
        return 1
    command = (f"python -m export.quantize_study --model {_display(a.model)} --data-dir DIR "
               f"--calibration-images {a.calibration_images} --slice-s {a.slice_s} "
               f"--rounds {a.rounds} --out {_display(a.out)}")
    report = run(a.model, a.data_dir or os.environ.get("HIGHWAY_DATA_DIR"),
                 a.calibration_images, a.slice_s, a.rounds, command)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    figure(report, a.out.with_suffix(".png"))
    print(f"wrote {a.out} and {a.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
