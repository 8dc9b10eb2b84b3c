"""Training throughput of one model under the setups worth comparing on a CPU.

``python -m training.speed [--model conv32] [--images 6400] [--rounds 2] [--out FILE]``

Each setup trains the same model for the same images, one after another and
then again (``--rounds``), so that a noisy shared machine affects all of them
alike; the median per setup is reported as images per second, with the ratio
to Keras' defaults.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

SETUPS = {
    # name: (input pipeline, jit_compile, dtype policy)
    "keras-defaults": ("numpy", "auto", "float32"),
    "no-xla": ("numpy", False, "float32"),
    "tf.data+no-xla": ("tf.data", False, "float32"),
    "tf.data+xla": ("tf.data", True, "float32"),
    "tf.data+no-xla+bf16": ("tf.data", False, "mixed_bfloat16"),
}


def measure(model_name: str, images: int, batch_size: int, setup: str, x, y) -> float:
    import keras

    from training import models
    from training.train import make_dataset

    pipeline, jit, policy = SETUPS[setup]
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = models.build(model_name)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit)
        warm = make_dataset(x[: 2 * batch_size], y[: 2 * batch_size], batch_size, shuffle=False)
        model.fit(warm, epochs=1, verbose=0)  # tracing/compilation is not throughput
        start = time.perf_counter()
        if pipeline == "numpy":
            model.fit(x[:images], y[:images], batch_size=batch_size, epochs=1, verbose=0)
        else:
            data = make_dataset(x[:images], y[:images], batch_size, shuffle=True, augment=2)
            model.fit(data, epochs=1, verbose=0)
        return images / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.speed", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="conv32")
    p.add_argument("--images", type=int, default=6400, help="training images per measurement")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data-dir", default="tests/fixtures/mnist")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)

    from training.quiet import import_tensorflow

    import_tensorflow()
    import numpy as np

    from highway_core import provenance
    from training.data import load_mnist
    from training.train import versions

    data = load_mnist(args.data_dir)
    reps = -(-args.images // len(data.x_train))
    x = np.concatenate([data.x_train] * reps)[: args.images]
    y = np.concatenate([data.y_train] * reps)[: args.images]
    results: dict[str, list[float]] = {name: [] for name in SETUPS}
    for r in range(args.rounds):
        for name in SETUPS:
            ips = measure(args.model, args.images, args.batch_size, name, x, y)
            results[name].append(ips)
            print(f"round {r + 1}/{args.rounds} {name:>22}: {ips:7.0f} images/s", flush=True)
    base = statistics.median(results["keras-defaults"])
    summary = {
        name: {"images_per_second": round(statistics.median(v), 1),
               "ratio_to_keras_defaults": round(statistics.median(v) / base, 3),
               "runs": [round(i, 1) for i in v]}
        for name, v in results.items()
    }
    for name, s in summary.items():
        print(f"{name:>22}: {s['images_per_second']:7.0f} images/s  "
              f"{s['ratio_to_keras_defaults']:.2f}x")
    if args.out:
        report = {"model": args.model, "images": args.images, "batch_size": args.batch_size,
                  **provenance.stamp(), "setups": summary, "versions": versions()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
