"""The training run's settings: typed, defaulted, validated without importing TensorFlow.

Kept apart from ``training.train`` so that the CLI refuses bad arguments at once,
before the seconds TensorFlow takes to load.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

MODEL_NAMES = ("seed", "conv16", "conv32", "fc")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "exponential", "cosine")


@dataclass
class TrainConfig:
    """Everything that decides a training run; the CLI builds one of these."""

    model: str = "conv32"  # zoo name: seed, conv16, conv32, fc
    out: str = "runs/model"  # run folder to write
    data_dir: str | None = None  # IDX folder; None: $HIGHWAY_DATA_DIR, then Keras' downloader
    depth: int = 10  # fc only: number of layers
    plain: bool = False  # fc only: plain layers instead of highway layers
    epochs: int = 10  # passes over the fitting split
    batch_size: int = 128  # images per step
    optimizer: str = "adam"  # adam, or sgd with momentum (the paper's)
    lr: float | None = None  # initial learning rate; None: 1e-3 for adam, 0.05 for sgd
    momentum: float = 0.9  # sgd momentum
    schedule: str = "constant"  # learning-rate schedule: constant, exponential, cosine
    lr_decay: float = 0.95  # exponential schedule: factor per epoch
    weight_decay: float = 0.0  # decoupled weight decay (AdamW-style)
    augment: int = 0  # random shifts of up to this many pixels (0: none)
    dropout: float = 0.0  # conv16/conv32: dropout rate after each pooling stage (0: none)
    val_size: int = 5000  # last training images held out for model selection
    seed: int = 0  # seeds Python, NumPy and TF; runs are deterministic given it
    jit: bool = False  # XLA-compile the train step (slower on CPU here: results/train_speed.json)
    verbose: int | None = None  # Keras verbosity; None: bar on a terminal, a line per epoch else
    command: str = field(default_factory=lambda: " ".join(sys.argv))  # recorded as given

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.optimizer == "adam" else 0.05

    def validate(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(
                f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}"
            )
        if self.model == "fc" and self.depth < 2:
            raise ValueError(f"--depth must be at least 2, got {self.depth}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose adam or sgd")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "val_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"--dropout must be at least 0 and below 1, got {self.dropout}")
        if self.dropout and not self.model.startswith("conv"):
            raise ValueError(f"--dropout applies to conv16 and conv32, not {self.model}")
        if self.augment < 0 or self.augment > 8:
            raise ValueError(f"--augment must be between 0 and 8 pixels, got {self.augment}")


KINDS = ("plain", "highway")


@dataclass(frozen=True)
class DepthConfig:
    """The grid and the budget of the depth experiment (one budget for every run)."""

    depths: tuple[int, ...] = (10, 20, 50, 100)  # numbers of layers, as in the paper
    kinds: tuple[str, ...] = KINDS  # plain and/or highway
    lrs: tuple[float, ...] = (0.01, 0.03, 0.1)  # initial SGD learning rates searched per config
    seeds: tuple[int, ...] = (0,)  # seeds per learning rate
    epochs: int = 10  # passes over the fitting images, every run
    batch_size: int = 128  # images per SGD step, every run
    momentum: float = 0.9  # SGD momentum (the paper's optimiser)
    lr_decay: float = 0.9  # learning-rate factor per epoch (exponential decay)
    val_size: int = 5000  # last training images held out, as training does (not fitted)
    train_size: int | None = 10000  # fit on the first N fitting images; None: all 55,000
    keep_depth: int = 50  # the highway depth whose best model is saved for the gates; 0: none
    # Highway gate-bias inits searched per configuration, like the learning rates;
    # None stands for ``gate_bias_for_depth(depth)``.
    gate_biases: tuple[float | None, ...] = (None,)

    def validate(self) -> None:
        if not self.depths or min(self.depths) < 2:
            raise ValueError(f"--depths must all be >= 2, got {list(self.depths)}")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError(f"--lrs must all be positive, got {list(self.lrs)}")
        if not self.kinds or set(self.kinds) - set(KINDS):
            raise ValueError(f"--kinds must be plain and/or highway, got {list(self.kinds)}")
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"--train-size must be positive (0: all), got {self.train_size}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be positive")
        if not self.gate_biases or any(b is not None and not b < 0 for b in self.gate_biases):
            raise ValueError("--gate-bias must be negative (a carry bias), got "
                             f"{list(self.gate_biases)}")
        if "highway" in self.kinds and self.keep_depth and self.keep_depth not in self.depths:
            raise ValueError(f"--keep-depth {self.keep_depth} is not one of --depths")
