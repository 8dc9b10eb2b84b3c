"""The paper's depth experiment (Figure 1): plain vs highway fc nets at growing depth.

Every configuration (kind × depth) is trained with the same budget (epochs,
batch size, SGD with momentum and exponential learning-rate decay) for each
learning rate × seed; the run with the lowest training loss is reported per
configuration, as the paper reports its best hyperparameter setting per depth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import keras
import tensorflow as tf

from training import models
from training.config import KINDS, DepthConfig  # noqa: F401 - re-exported here
from training.data import Mnist
from training.depth_tables import accuracy_text, loss_text, rank
from training.layers import gate_bias_for_depth, is_highway
from training.train import TrainConfig, make_dataset, make_optimizer


def build(kind: str, depth: int, seed: int, gate_bias: float | None = None) -> keras.Model:
    """``models.fc`` with He-normal kernels on every ReLU transform, plain and highway alike.

    Why: with Keras' default Glorot init a deep ReLU stack shrinks its signal by
    ~√2 a layer, which would make the plain nets fail for the wrong reason. The
    paper used normalised (He-style) initialisation for its plain nets; we give
    the highway transforms H the same, and leave the gates as ``models.fc`` makes them.
    """
    model = models.fc(depth, plain=(kind == "plain"), gate_bias_init=gate_bias)
    # A seed *generator*: an initializer given a plain integer seed draws the same
    # values on every call, which would start every same-shaped layer identical.
    init = keras.initializers.HeNormal(seed=keras.random.SeedGenerator(seed))
    for layer in model.layers:
        plain_transform = (isinstance(layer, keras.layers.Dense)
                           and layer.name != "probabilities")
        if plain_transform or is_highway(layer):
            layer.kernel.assign(init(layer.kernel.shape))
    return model


class _Progress(keras.callbacks.Callback):
    """One line per epoch, so that a 30-minute grid shows where it is."""

    def __init__(self, tag: str, epochs: int):
        super().__init__()
        self.tag, self.epochs = tag, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(f"{self.tag} epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', math.nan):.4f}"
              f" accuracy {100 * logs.get('accuracy', math.nan):.2f}%"
              f" ({time.perf_counter() - self._start:.1f} s)", flush=True)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def run_one(cfg: DepthConfig, data: Mnist, kind: str, depth: int, lr: float, seed: int,
            tag: str = "", save_to: Path | None = None, gate_bias: float | None = None) -> dict:
    """Train one network; returns its record (curve, best/final loss, test accuracy).

    ``gate_bias`` is a highway net's gate-bias init; None: ``gate_bias_for_depth(depth)``.
    """
    keras.utils.set_random_seed(seed)
    (x_fit, y_fit), _ = data.split_validation(cfg.val_size)
    if cfg.train_size is not None:
        x_fit, y_fit = x_fit[: cfg.train_size], y_fit[: cfg.train_size]
    model = build(kind, depth, seed, gate_bias)
    steps = -(-len(x_fit) // cfg.batch_size)
    train_cfg = TrainConfig(model="fc", depth=depth, plain=kind == "plain", epochs=cfg.epochs,
                            batch_size=cfg.batch_size, optimizer="sgd", lr=lr,
                            momentum=cfg.momentum, schedule="exponential",
                            lr_decay=cfg.lr_decay, seed=seed, command="")
    model.compile(optimizer=make_optimizer(train_cfg, steps),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(
        make_dataset(x_fit, y_fit, cfg.batch_size, shuffle=True, seed=seed),
        epochs=cfg.epochs, verbose=0, shuffle=False,
        callbacks=[keras.callbacks.TerminateOnNaN(), _Progress(tag, cfg.epochs)],
    )
    seconds = time.perf_counter() - start
    losses = [float(v) for v in history.history["loss"]]
    finite = [v for v in losses if math.isfinite(v)]
    diverged = len(finite) < len(losses)
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=2000, verbose=0)
    if save_to is not None:
        save_without_optimizer(model, save_to)
    return {
        "kind": kind, "depth": depth, "lr": lr, "seed": seed,
        "gate_bias": (None if kind == "plain" else
                      gate_bias if gate_bias is not None else gate_bias_for_depth(depth)),
        "params": int(model.count_params()),
        "train_loss": [_finite(v) for v in losses],
        "train_accuracy": [float(v) for v in history.history["accuracy"]],
        # A diverged run keeps its last finite loss (None if it had none); "diverged" says
        # so. Its weights hold NaN, so nothing measured on them is a result: no accuracy.
        "best_train_loss": min(finite) if finite else None,
        "final_train_loss": finite[-1] if finite else None,
        "diverged": diverged or not math.isfinite(test_loss),
        "test_accuracy": None if diverged or not math.isfinite(test_loss)
        else float(test_accuracy),
        "test_loss": None if diverged else _finite(test_loss),
        "epochs": cfg.epochs,
        "images": len(x_fit),
        "seconds": round(seconds, 1),
    }


def save_without_optimizer(model: keras.Model, path: Path) -> None:
    """Save an uncompiled copy: the .keras format keeps the SGD momentum state otherwise,
    doubling the size of a file that is committed."""
    bare = keras.Model(model.inputs, model.outputs, name=model.name)  # same layers, uncompiled
    bare.save(path)


# The gate bias is not part of the budget: like the learning rate it is searched,
# and each run records its own (configs written before the search have "gate_bias").
BUDGET_KEYS = ("epochs", "batch_size", "momentum", "lr_decay", "val_size", "train_size")


def gate_biases(cfg: DepthConfig, kind: str, depth: int) -> list[float | None]:
    """The gate-bias inits one configuration is trained with (None for plain nets)."""
    if kind == "plain":
        return [None]
    return list(dict.fromkeys(gate_bias_for_depth(depth) if b is None else float(b)
                              for b in cfg.gate_biases))


def run_key(run: dict) -> tuple:
    """What tells two runs of one budget apart."""
    return run["kind"], run["depth"], run["lr"], run["seed"], run.get("gate_bias")


def same_budget(cfg: DepthConfig, previous_config: dict) -> bool:
    """Whether runs made under ``previous_config`` were trained exactly as ``cfg`` would."""
    return all(previous_config.get(key) == getattr(cfg, key) for key in BUDGET_KEYS)


def run_grid(cfg: DepthConfig, data: Mnist, out: Path, model_name: str,
             previous: list[dict] | None = None,
             on_run: Callable[[list[dict]], None] | None = None) -> dict:
    """Train the grid; returns the report written to ``depth.json`` and ``depth_runs.json``.

    ``previous`` runs (same budget, see ``same_budget``) are kept: those in this
    grid are reused instead of retrained, the others join the report, so that
    invocations with different grids add up. Runs are seeded one by one, so a
    reused run is the run a fresh grid would make. The best highway run at
    ``cfg.keep_depth`` that did not diverge is saved as ``out/model_name``. ``on_run`` sees the runs
    so far after each new one (to save progress).
    """
    cfg.validate()
    tf.config.experimental.enable_op_determinism()
    grid = [(kind, depth, lr, seed, bias) for depth in cfg.depths for kind in cfg.kinds
            for bias in gate_biases(cfg, kind, depth) for lr in cfg.lrs for seed in cfg.seeds]
    done = {run_key(r): r for r in previous or []}
    runs = [r for key, r in done.items() if key not in grid]
    # A diverged run's weights hold NaN: never kept for the gate analysis.
    # --keep-depth 0 keeps no network (a search whose nets nobody analyses).
    kept = min((r for r in done.values() if cfg.keep_depth and (r["kind"], r["depth"]) == (
                "highway", cfg.keep_depth) and not r["diverged"]), key=rank, default=None)
    if kept is not None and not (out / model_name).is_file():
        raise ValueError(f"{out / model_name} is missing, so earlier runs cannot be reused; "
                         "run without --resume")
    start = time.perf_counter()
    for i, key in enumerate(grid, start=1):
        kind, depth, lr, seed, bias = key
        tag = (f"[{i}/{len(grid)}] {kind}-{depth} lr={lr:g} seed={seed}"
               + ("" if bias is None else f" gate_bias={bias:g}"))
        if key in done:
            runs.append(done[key])
            print(f"{tag}: reused from an earlier invocation", flush=True)
            continue
        candidate = out / f".candidate_{model_name}"
        keep = kind == "highway" and depth == cfg.keep_depth
        run = run_one(cfg, data, kind, depth, lr, seed, tag, candidate if keep else None, bias)
        runs.append(run)
        if keep:
            if not run["diverged"] and (kept is None or rank(run) < rank(kept)):
                candidate.replace(out / model_name)
                kept = run
            else:
                candidate.unlink()
        if on_run is not None:  # with the reused runs still ahead, so none goes missing
            on_run(runs + [done[key] for key in grid[i:] if key in done])
        print(f"{tag}: best loss {loss_text(run['best_train_loss'])}, test accuracy "
              f"{accuracy_text(run['test_accuracy'])}, "
              f"{run['seconds']:.0f} s; {time.perf_counter() - start:.0f} s so far", flush=True)
    runs.sort(key=lambda r: (r["depth"], KINDS.index(r["kind"]), -(r.get("gate_bias") or 0),
                             r["lr"], r["seed"]))
    configs = list(dict.fromkeys((r["kind"], r["depth"]) for r in runs))
    best = [min((r for r in runs if (r["kind"], r["depth"]) == key), key=rank)
            for key in configs]
    rows = [{k: r.get(k) for k in ("kind", "depth", "best_train_loss", "final_train_loss",
                                   "test_accuracy", "epochs", "lr", "seed", "gate_bias",
                                   "params", "diverged", "seconds")} for r in best]
    counts = [sum((r["kind"], r["depth"]) == key for r in runs) for key in configs]
    return {"rows": rows, "runs": runs, "config": asdict(cfg),
            "runs_per_config": [min(counts), max(counts)],
            "wall_seconds": round(time.perf_counter() - start, 1),
            "train_seconds_total": round(sum(r["seconds"] for r in runs), 1),
            # The folder's name only: the JSON is committed, machine paths stay out of it.
            "data": f"{Path(data.source).name}: {len(data.x_train):,} training, "
                    f"{len(data.x_test):,} test images",
            "images": runs[0]["images"] if runs else 0}


def curves_by_config(report: dict) -> dict[tuple[str, int], list[float | None]]:
    """The training-loss curve of each configuration's best run, for the figure."""
    best = {(r["kind"], r["depth"]): run_key(r) for r in report["rows"]}
    return {key: r["train_loss"] for r in report["runs"]
            for key in [(r["kind"], r["depth"])] if best[key] == run_key(r)}
