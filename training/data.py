"""MNIST from the four standard IDX files (read by :mod:`highway_core.idx`); Keras' downloader
as a fallback.

Images stay ``uint8 [N, 28, 28]`` and labels ``uint8 [N]`` all the way into the
model: scaling to [0, 1] happens inside the model, so an exported model takes raw
pixels. This module holds no training logic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from highway_core.idx import IMAGE_MAGIC, LABEL_MAGIC, IdxError, read_idx
from highway_core.messages import first_line

__all__ = ["DATA_DIR_ENV", "IMAGE_MAGIC", "LABEL_MAGIC", "Mnist", "MnistDataError", "load_mnist",
           "load_split", "read_idx"]

DATA_DIR_ENV = "HIGHWAY_DATA_DIR"

# Each split's two files; the second spelling is the one some mirrors use.
_STEMS = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


MnistDataError = IdxError
"""A missing, truncated or corrupt MNIST file; the one-line message names the file."""


@dataclass(frozen=True)
class Mnist:
    """The MNIST training and test sets as raw uint8 pixels and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def split_validation(self, size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Hold out the last ``size`` training images for model selection.

        Returns ``((x_fit, y_fit), (x_val, y_val))``. The test set is never used
        for selection.
        """
        if not 0 < size < len(self.x_train):
            raise ValueError(
                f"Expected 0 < validation size < {len(self.x_train)}. Received: size={size}"
            )
        cut = len(self.x_train) - size
        return (self.x_train[:cut], self.y_train[:cut]), (self.x_train[cut:], self.y_train[cut:])


def _find(directory: Path, split: str, kind: str) -> Path:
    for stem in _STEMS[(split, kind)]:
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    raise MnistDataError(
        f"{directory}: no {split} {kind} file (expected {_STEMS[(split, kind)][0]}[.gz])"
    )


def load_split(directory: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one split (``"train"`` or ``"test"``) from a directory of IDX files."""
    directory = Path(directory)
    images_path = _find(directory, split, "images")
    labels_path = _find(directory, split, "labels")
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise MnistDataError(
            f"{images_path}: {len(images)} images but {labels_path.name} has {len(labels)} labels"
        )
    return images, labels


def load_mnist(data_dir: str | os.PathLike[str] | None = None) -> Mnist:
    """Load MNIST from ``data_dir``, else ``$HIGHWAY_DATA_DIR``, else Keras' downloader.

    Raises:
        MnistDataError: a missing directory, a bad file, or a failed download.
    """
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if data_dir is not None:
        directory = Path(data_dir)
        if not directory.is_dir():
            raise MnistDataError(f"{directory}: MNIST data directory does not exist")
        x_train, y_train = load_split(directory, "train")
        x_test, y_test = load_split(directory, "test")
        return Mnist(x_train, y_train, x_test, y_test, source=str(directory))
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as e:  # network, proxy, or a corrupt cache: one line, not a traceback
        raise MnistDataError(
            f"cannot download MNIST ({type(e).__name__}: {first_line(e)});"
            f" pass --data-dir or set {DATA_DIR_ENV} to a folder with the IDX files"
        ) from None
    return Mnist(
        x_train.astype(np.uint8), y_train.astype(np.uint8),
        x_test.astype(np.uint8), y_test.astype(np.uint8), source="keras.datasets.mnist",
    )
