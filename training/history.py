"""A run's ``history.csv``: one row per finished epoch (TensorFlow-free, so that
``training.table1`` reads the committed records without loading it)."""

from __future__ import annotations

import csv
from pathlib import Path

KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")
"""The columns after ``epoch``, as Keras and the trainer's epoch log name them."""


def read(path: Path) -> list[dict[str, float]]:
    """The rows, ``epoch`` as an int and the rest as floats; [] if there is no file yet."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def write(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
