"""Fit, select on a validation split, evaluate once on the test set, write the run.

A run folder holds ``model.keras`` (the best epoch by validation accuracy),
``history.csv``, ``curves.png``, ``metrics.json`` and ``train.log`` (the command
and a line per epoch, handy to follow a run in the background).

A run that is interrupted resumes where it stopped when started again with the
same folder: Keras' ``BackupAndRestore`` keeps the weights, the optimizer and the
epoch in ``backup/`` (deleted when the run completes), ``history.csv`` is written
an epoch at a time, and the best-so-far checkpoint keeps its threshold. The
shuffling order after a resume differs from an uninterrupted run's.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from highway_core import provenance
from highway_core.versions import library_versions
from training import history, models, plots
from training.config import TrainConfig
from training.data import Mnist, load_mnist

__all__ = ["TrainConfig", "make_dataset", "make_optimizer", "train", "versions"]

def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool,
                 augment: int = 0, seed: int = 0) -> tf.data.Dataset:
    """A tf.data pipeline over uint8 images; shifts are stateless-random, so reproducible."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        pad = augment

        def shift(image, label, key):
            padded = tf.pad(image, [[pad, pad], [pad, pad]])
            return tf.image.stateless_random_crop(padded, tf.shape(image), seed=key), label

        keys = tf.data.Dataset.random(seed=seed).batch(2)  # a fresh (2,) key per image
        ds = tf.data.Dataset.zip((ds, keys)).map(
            lambda xy, key: shift(xy[0], xy[1], key), num_parallel_calls=tf.data.AUTOTUNE
        )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr: float | keras.optimizers.schedules.LearningRateSchedule = cfg.learning_rate()
    if cfg.schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(lr, steps_per_epoch, cfg.lr_decay)
    elif cfg.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, cfg.epochs * steps_per_epoch, alpha=0.01)
    wd = cfg.weight_decay or None
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, weight_decay=wd)
    return keras.optimizers.Adam(lr, weight_decay=wd)


class _EpochLog(keras.callbacks.Callback):
    """Adds wall time and learning rate to each epoch's row; appends it to history.csv
    and a line to train.log, so an interrupted run keeps the epochs it finished."""

    def __init__(self, path: Path, history_path: Path):
        super().__init__()
        self.path = path
        self.history_path = history_path

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["seconds"] = time.perf_counter() - self._start
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))
        fields = " ".join(f"{k}={v:.5g}" for k, v in logs.items())
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} epoch {epoch + 1} {fields}\n")
        rows = [r for r in history.read(self.history_path) if r["epoch"] != epoch + 1]
        rows.append({"epoch": epoch + 1, **{k: float(logs[k]) for k in history.KEYS if k in logs}})
        history.write(self.history_path, rows)


def versions() -> dict[str, str]:
    """The versions a training run records: Python, TensorFlow, Keras, NumPy."""
    return library_versions("tensorflow", "keras", "numpy")


def train(cfg: TrainConfig, data: Mnist | None = None) -> dict:
    """Train one model as ``cfg`` says; returns what is written to ``metrics.json``."""
    cfg.validate()
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    data = data if data is not None else load_mnist(cfg.data_dir)
    (x_fit, y_fit), (x_val, y_val) = data.split_validation(cfg.val_size)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    log_path = out / "train.log"
    history_path = out / "history.csv"
    earlier = history.read(history_path) if (out / "backup").is_dir() else []
    if not earlier:
        history_path.unlink(missing_ok=True)
    with log_path.open("a" if earlier else "w") as f:  # a resumed run may be on another machine
        f.write(f"{cfg.command}\n" + (f"resuming after epoch {len(earlier)}\n" if earlier else "")
                + f"machine: {provenance.machine()}\n")
    model = models.build(cfg.model, depth=cfg.depth, plain=cfg.plain, dropout=cfg.dropout)
    steps = -(-len(x_fit) // cfg.batch_size)
    model.compile(optimizer=make_optimizer(cfg, steps), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=cfg.jit)
    fit_ds = make_dataset(x_fit, y_fit, cfg.batch_size, shuffle=True, augment=cfg.augment,
                          seed=cfg.seed)
    val_ds = make_dataset(x_val, y_val, 1000, shuffle=False)
    print(f"{model.name}: {model.count_params():,} parameters; fitting on {len(x_fit):,} "
          f"images, selecting on {len(x_val):,} ({data.source})", flush=True)
    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 2)
    start = time.perf_counter()
    model.fit(
        fit_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=verbose, shuffle=False,
        callbacks=[
            _EpochLog(log_path, history_path),
            keras.callbacks.ModelCheckpoint(
                out / "model.keras", monitor="val_accuracy", save_best_only=True, mode="max",
                initial_value_threshold=max((r["val_accuracy"] for r in earlier), default=None)),
            keras.callbacks.BackupAndRestore(out / "backup"),
        ],
    )
    rows = history.read(history_path)  # with the epochs of earlier, interrupted attempts
    train_seconds = time.perf_counter() - start + sum(r["seconds"] for r in earlier)
    plots.training_curves(rows, out / "curves.png", title=f"{model.name} ({cfg.command})")

    best = keras.models.load_model(out / "model.keras")
    x_test = data.x_test
    test_loss, test_accuracy = best.evaluate(x_test, data.y_test,
                                             batch_size=1000, verbose=0)
    best_row = max(rows, key=lambda r: r["val_accuracy"])
    fit_seconds = sum(r["seconds"] for r in rows)
    metrics = {
        "model": model.name,
        "params": int(model.count_params()),
        "highway_layers": [layer.name for layer in models.highway_layers(model)],
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "test_images": int(len(x_test)),
        "best_epoch": int(best_row["epoch"]),
        "best_val_accuracy": float(best_row["val_accuracy"]),
        "epochs": cfg.epochs,
        "train_seconds": round(train_seconds, 2),
        "train_images_per_second": round(cfg.epochs * len(x_fit) / fit_seconds, 1),
        "data": data.source,
        "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
        "command": cfg.command,
        "versions": versions(),
        **provenance.stamp(),  # when it finished, and where (train.log: where each part ran)
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    summary = (f"test accuracy {test_accuracy:.4%} (loss {test_loss:.4f}) from epoch "
               f"{metrics['best_epoch']}; {train_seconds:.0f} s")
    with log_path.open("a") as f:
        f.write(summary + "\n")
    print(f"test accuracy {test_accuracy:.4%} (loss {test_loss:.4f}) from epoch "
          f"{metrics['best_epoch']}; {train_seconds:.0f} s; wrote {out}/", flush=True)
    return metrics

