"""``highway-train`` / ``python -m training``: train a zoo model on MNIST."""

from __future__ import annotations

import argparse
import sys

from highway_core.messages import missing_extra


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="highway-train",
        description="Train a highway-network MNIST classifier and write model.keras, "
        "history.csv, curves.png and metrics.json into --out.",
    )
    p.add_argument("--model", required=True, help="seed, conv16, conv32 or fc")
    p.add_argument("--depth", type=int, default=10, help="fc: number of layers (>= 2)")
    p.add_argument("--plain", action="store_true", help="fc: plain layers instead of highway")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", default="adam", help="adam (default) or sgd with momentum")
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 (adam), 0.05 (sgd)")
    p.add_argument("--momentum", type=float, default=0.9, help="sgd momentum")
    p.add_argument("--schedule", default="constant", help="constant, exponential or cosine")
    p.add_argument("--lr-decay", type=float, default=0.95,
                   help="exponential schedule: learning-rate factor per epoch")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay")
    p.add_argument("--augment", type=int, default=0,
                   help="random shifts of up to this many pixels (0: none)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="conv16/conv32: dropout rate after each pooling stage (0: none)")
    p.add_argument("--val-size", type=int, default=5000,
                   help="training images held out for model selection")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    p.add_argument("--data-dir", default=None,
                   help="folder with the four MNIST IDX files (default: $HIGHWAY_DATA_DIR, "
                   "then Keras' downloader)")
    p.add_argument("--out", required=True, help="run folder to write")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_extra(("tensorflow", "keras", "matplotlib"), "train")
    if missing:
        print(f"highway-train: error: {missing}", file=sys.stderr)
        return 2
    from training.config import TrainConfig
    from training.data import MnistDataError

    command = "highway-train " + " ".join(sys.argv[1:] if argv is None else argv)
    cfg = TrainConfig(**vars(args), command=command)
    try:
        cfg.validate()  # bad arguments are answered before TensorFlow loads
        from training.quiet import import_tensorflow

        import_tensorflow()  # before Keras: keeps TF's C++ start-up notes off the console
        from training.train import train

        train(cfg)
    except (MnistDataError, ValueError, OSError) as e:
        print(f"highway-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("highway-train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
