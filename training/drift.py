"""``python -m training.experiments drift``: do the gates notice inputs unlike MNIST?

Runs the exported model through ONNX Runtime (what the server computes) on
in-distribution images and on shifted ones, and scores windows of their gate
activity against the model's ``gate_reference.json`` with ``highway_core.drift``,
the code the server uses. In-distribution windows come from the held-out last
5,000 training images (neither trained on nor part of the reference, which is the
verification images: the test set); shifts are applied to test images, so every
shifted image has a label and accuracy stands beside each score (random strokes
have no label: mean confidence instead). Writes ``drift.json`` and ``drift.png``.

No TensorFlow: ONNX Runtime, NumPy and Pillow.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from highway_core import drift, provenance
from highway_core.facts import GATE_ACTIVITY, INPUT_NAME, PROBABILITIES, shipped_model

DEFAULT_MODEL = shipped_model()
VAL_SIZE = 5000  # the trainer's default held-out split


def _per_image(images: np.ndarray, f: Callable[[Image.Image, np.random.Generator], Image.Image],
               rng: np.random.Generator) -> np.ndarray:
    return np.stack([np.asarray(f(Image.fromarray(x), rng)) for x in images])


def _rotate(degrees: float):
    def rotate(images, rng):
        return _per_image(images, lambda im, r: im.rotate(degrees * r.choice((-1, 1)),
                                                          Image.Resampling.BILINEAR), rng)
    return rotate


def _noise(sigma: float):
    def noise(images, rng):
        return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)
    return noise


def _shift(pixels: int):
    def shift(images, rng):
        out = np.zeros_like(images)
        for i, x in enumerate(images):
            dy, dx = [(0, pixels), (0, -pixels), (pixels, 0), (-pixels, 0)][rng.integers(4)]
            out[i] = np.roll(x, (dy, dx), axis=(0, 1))
            # np.roll wraps around; blank the rows/columns that came from the other side.
            if dy > 0:
                out[i, :dy] = 0
            elif dy < 0:
                out[i, dy:] = 0
            if dx > 0:
                out[i, :, :dx] = 0
            elif dx < 0:
                out[i, :, dx:] = 0
        return out
    return shift


def strokes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random pen strokes (1-4 straight or bent lines), drawn like MNIST: white on black."""
    out = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        im = Image.new("L", (28, 28))
        draw = ImageDraw.Draw(im)
        for _ in range(rng.integers(1, 5)):
            points = [tuple(int(v) for v in rng.integers(4, 24, 2))
                      for _ in range(rng.integers(2, 4))]
            draw.line(points, fill=int(rng.integers(180, 256)), width=int(rng.integers(2, 4)))
        out[i] = np.asarray(im)
    return out


# name -> transform of labelled test images (None: random strokes, no labels)
SHIFTS: dict[str, Callable | None] = {
    "inverted": lambda x, rng: 255 - x,
    "Gaussian noise σ=40": _noise(40),
    "Gaussian noise σ=100": _noise(100),
    "rotated 30°": _rotate(30),
    "rotated 60°": _rotate(60),
    "shifted 6 px": _shift(6),
    "contrast halved": lambda x, rng: (x // 2).astype(np.uint8),
    "random strokes": None,
}


def run_model(session, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [N, 10], gate_activity [N, L]) from an ONNX Runtime session."""
    parts = [session.run([PROBABILITIES, GATE_ACTIVITY], {INPUT_NAME: images[i:i + batch]})
             for i in range(0, len(images), batch)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def window_scores(reference: drift.GateReference, gates: np.ndarray, window: int, count: int,
                  rng: np.random.Generator) -> tuple[list[float], np.ndarray]:
    """Overall scores of ``count`` random windows (no repeats within one) and the median
    per-layer PSI."""
    per_layer = np.array([reference.scores(gates[rng.choice(len(gates), window, replace=False)])
                          for _ in range(count)])
    return [drift.overall(s) for s in per_layer], np.median(per_layer, axis=0)


def _condition(name, probs, gates, labels, reference, settings, rng) -> dict:
    scores, layers = window_scores(reference, gates, settings.window, settings.windows, rng)
    row = {"condition": name, "images": int(len(gates)),
           "score_median": float(np.median(scores)), "score_min": float(np.min(scores)),
           "score_max": float(np.max(scores)), "scores": [round(s, 5) for s in scores],
           "layer_psi_median": [round(float(v), 5) for v in layers],
           "mean_confidence": float(probs.max(axis=1).mean())}
    if labels is not None:
        row["accuracy"] = float(np.mean(probs.argmax(axis=1) == labels))
    row["crosses_threshold"] = bool(np.min(scores) > settings.threshold)
    row["windows_over_threshold"] = int(np.sum(np.array(scores) > settings.threshold))
    return row


def _shown(source: str) -> str:
    """A data folder as recorded: relative to the checkout, else just its name."""
    path = Path(source)
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name


def machine() -> str:
    """CPU model and core count, for the record."""
    return f"{provenance.cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.experiments drift",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                   help=f"exported model.onnx with a gate reference (default {DEFAULT_MODEL})")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default $HIGHWAY_DATA_DIR)")
    p.add_argument("--out", type=Path, default=Path("docs/results"), help="output folder")
    p.add_argument("--window", type=int, default=1000, help="images per window (server default)")
    p.add_argument("--windows", type=int, default=30, help="random windows per condition")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="drift threshold drawn and checked (server default)")
    p.add_argument("--images", type=int, default=3000, help="test images per shift")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 200 images, windows of 50 (numbers mean nothing)")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.window, args.windows = 200, 50, 3
    if args.window < 10 or args.windows < 1 or args.images < args.window:
        p.error("need --window >= 10, --windows >= 1 and --images >= --window")
    return args


def run(args: argparse.Namespace) -> dict:
    import onnxruntime as ort

    from training.data import load_mnist

    rng = np.random.default_rng(args.seed)
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    reference = drift.read(args.model.parent / drift.FILENAME)
    data = load_mnist(args.data_dir)
    val = args.images if args.quick else min(VAL_SIZE, len(data.x_train) // 2)
    x_val, y_val = data.x_train[-val:], data.y_train[-val:]
    pick = rng.choice(len(data.x_test), min(args.images, len(data.x_test)), replace=False)
    x_test, y_test = data.x_test[pick], data.y_test[pick]
    rows = []
    probs, gates = run_model(session, x_val)
    rows.append(_condition("in-distribution (held-out training images)", probs, gates, y_val,
                           reference, args, rng))
    # How the unshifted score's noise falls with the window size: what sets the default.
    noise = {str(w): float(np.max(window_scores(reference, gates, w, args.windows, rng)[0]))
             for w in (args.window // 4, args.window // 2, args.window, args.window * 2)
             if w <= len(gates)}
    probs, gates = run_model(session, x_test)
    rows.append(_condition("test images, unshifted", probs, gates, y_test, reference, args, rng))
    for name, transform in SHIFTS.items():
        images = strokes(len(x_test), rng) if transform is None else transform(x_test, rng)
        probs, gates = run_model(session, images)
        rows.append(_condition(name, probs, gates, None if transform is None else y_test,
                               reference, args, rng))
        print(f"{name:>44}: score {rows[-1]['score_median']:.3f}, accuracy "
              f"{rows[-1].get('accuracy', float('nan')):.3f}", flush=True)
    # Unmodified images, but not the reference's mix: the second half of the test set
    # (NIST's SD-1 writers, the first half being SD-3's), and a single class (label shift).
    half = len(data.x_test) // 2
    ones = data.y_test == 1
    for name, x, y in (("test images of the other writers (second half)",
                        data.x_test[half:], data.y_test[half:]),
                       ("only the digit 1 (label shift)", data.x_test[ones], data.y_test[ones])):
        x, y = x[:args.images], y[:args.images]
        if len(x) < args.window:
            raise ValueError(f"{name}: {len(x)} images, fewer than --window {args.window}")
        probs, gates = run_model(session, x)
        rows.append(_condition(name, probs, gates, y, reference, args, rng))
    return {
        "model": args.model.as_posix(), "reference": f"{drift.FILENAME} ({reference.source})",
        "data": _shown(data.source), "metric": "largest per-layer PSI over reference deciles",
        "layers": reference.names, "window": args.window, "windows": args.windows,
        "threshold": args.threshold, "in_distribution_max_by_window": noise,
        "conditions": rows, "quick": args.quick, "seed": args.seed,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    from training.data import MnistDataError

    args = parse_args(argv)
    start = time.perf_counter()
    try:
        report = run(args)
        args.out.mkdir(parents=True, exist_ok=True)
        report["seconds"] = round(time.perf_counter() - start, 1)
        (args.out / "drift.json").write_text(json.dumps(report, indent=1) + "\n")
        from training import plots

        plots.gate_drift(report, args.out / "drift.png")
    except (MnistDataError, drift.ReferenceError, ValueError, OSError) as e:
        print(f"experiments drift: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'drift.json'} and drift.png in {report['seconds']:.0f} s")
    return 0
