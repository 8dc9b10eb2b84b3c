"""``highway-export`` / ``python -m export``: .keras → verified ONNX in a model repository."""

from __future__ import annotations

import argparse
import sys

from export.errors import ExportError
from highway_core.facts import MODEL_NAME as DEFAULT_NAME
from highway_core.messages import missing_extra, one_line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="highway-export",
        description="Convert a trained highway model to ONNX (one HighwayGate function node "
        "per highway layer), verify it against Keras and write REPO/NAME/VERSION/model.onnx.",
    )
    p.add_argument("--model", required=True, help="model.keras written by highway-train")
    p.add_argument("--repository", required=True, help="model repository folder")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"model name (default {DEFAULT_NAME})")
    p.add_argument("--version", type=int, default=None,
                   help="version number (default: the next free one)")
    p.add_argument("--data-dir", default=None,
                   help="MNIST IDX folder for verification (default: $HIGHWAY_DATA_DIR, then "
                   "tests/fixtures/mnist under the working directory, then Keras' downloader)")
    p.add_argument("--images", type=int, default=1000,
                   help="real test images to compare Keras and ONNX on (at least 1000)")
    p.add_argument("--with-keras", action="store_true",
                   help="also copy the .keras model into the version folder (shipped model)")
    p.add_argument("--quantize", default=None, metavar="int8",
                   help="write an int8 model instead (QDQ, per-channel int8 weights, "
                   "calibrated on the first training images of the data folder; the gates "
                   "stay HighwayGate nodes); verified to int8 bounds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # TensorFlow is imported (quietly) only once a model file is there to load, so that
    # mistakes in the arguments are answered at once. A server-only install has this
    # command too (one distribution): it says what is missing instead of a traceback.
    missing = missing_extra(("tensorflow", "tf2onnx", "onnx"), "train")
    if missing:
        print(f"highway-export: error: {missing}", file=sys.stderr)
        return 2
    from export.quantize import CHOICES as QUANTIZE_CHOICES

    if args.quantize is not None and args.quantize not in QUANTIZE_CHOICES:
        print(f"highway-export: error: --quantize {args.quantize!r} is not supported; "
              f"choose from {', '.join(QUANTIZE_CHOICES)}", file=sys.stderr)
        return 2
    from export.exporter import export_model

    try:
        export_model(args.model, args.repository, name=args.name, version=args.version,
                     data_dir=args.data_dir, images=args.images, with_keras=args.with_keras,
                     quantize=args.quantize,
                     log=lambda line: print(line, flush=True))
    except ExportError as e:
        print(f"highway-export: error: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("highway-export: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
