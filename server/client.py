"""``python -m server.client --address HOST:PORT FILE…``: classify PNG and IDX images.

PNGs of any size or colour are converted the way MNIST digits were made:
grayscale, white digit on black (inverted when the background is light), the
digit's bounding box scaled to fit 20x20 and centred by its centre of mass in a
28x28 frame. IDX files (``*-idx3-ubyte``, optionally gzipped) are used as they are.

One line per image on stdout; a summary (images, seconds, images/s, and the
accuracy when ``--labels`` is given) on stderr. Without ``--stream`` each file goes
in Predict calls of at most ``--batch`` images (the server refuses requests over its
``--max-request-images``); ``--stream`` sends every image as its own request on one
PredictStream, all in flight at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np

from highway_core.facts import COLS, ROWS
from highway_core.idx import LABEL_MAGIC, IdxError, read_idx
from protos.highway.v1 import classifier_pb2 as hw
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from server import channels


class InputError(Exception):
    """An unreadable or unsupported input file; the message names it."""


def mnist_like(gray: np.ndarray) -> np.ndarray:
    """A grayscale image (any size, uint8) as a 28x28 MNIST-style digit."""
    from PIL import Image

    img = gray.astype(np.float32)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    if border.mean() > 127:  # dark digit on light paper: MNIST is white on black
        img, border = 255.0 - img, 255.0 - border
    img = np.clip(img - np.median(border), 0, None)  # background to 0
    if img.max() <= 0:
        return np.zeros((ROWS, COLS), dtype=np.uint8)
    img *= 255.0 / img.max()  # full contrast, as MNIST strokes are
    ys, xs = np.nonzero(img > 25)
    crop = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = 20.0 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize(size, Image.LANCZOS),
                       dtype=np.float32)
    frame = np.zeros((ROWS, COLS), dtype=np.float32)
    total = small.sum() or 1.0
    cy = (small.sum(axis=1) * np.arange(small.shape[0])).sum() / total
    cx = (small.sum(axis=0) * np.arange(small.shape[1])).sum() / total
    top = int(np.clip(round(ROWS / 2 - cy), 0, ROWS - small.shape[0]))
    left = int(np.clip(round(COLS / 2 - cx), 0, COLS - small.shape[1]))
    frame[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(frame, 0, 255).astype(np.uint8)


def read_png(path: Path) -> np.ndarray:
    """One PNG (or other Pillow image) as uint8 [1, 28, 28]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            gray = np.asarray(Image.alpha_composite(background, im).convert("L"))
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from None
    return mnist_like(gray)[None]


def load(path: Path) -> np.ndarray:
    """Images [N, 28, 28] from a PNG/JPEG or an IDX file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    name = path.name.lower()
    if "idx3" in name or name.endswith((".idx", ".idx.gz")):
        return read_idx(path)
    return read_png(path)


def _where(path: Path, i: int, count: int) -> str:
    return f"{path}[{i}]" if count > 1 else str(path)


def _unary(stub, batches, args, headers) -> Iterator[tuple[str, hw.Prediction | hw.Error]]:
    """Predict calls of at most ``args.batch`` images, one file after another."""
    for path, images in batches:
        for first in range(0, len(images), args.batch):
            response = stub.Predict(hw.PredictRequest(
                model_name=args.model, model_version=args.version,
                images=[image.tobytes() for image in images[first:first + args.batch]],
                return_gate_activity=args.gates), timeout=args.timeout, metadata=headers)
            for i, prediction in enumerate(response.predictions, start=first):
                yield _where(path, i, len(images)), prediction


def _streamed(stub, batches, args, headers
              ) -> Iterator[tuple[str, hw.Prediction | hw.Error]]:
    """One PredictStream: a request per image, all in flight, answers in order."""
    names = [_where(path, i, len(images)) for path, images in batches for i in range(len(images))]
    requests = (hw.PredictRequest(id=str(k), model_name=args.model, model_version=args.version,
                                  images=[image.tobytes()], return_gate_activity=args.gates)
                for k, image in enumerate(image for _, images in batches for image in images))
    deadline = args.timeout * max(1.0, len(names) / 1000)
    for answer in stub.PredictStream(requests, timeout=deadline, metadata=headers):
        where = names[int(answer.id)]
        if answer.HasField("error"):
            yield where, answer.error
        else:
            yield where, answer.response.predictions[0]


def _labels(path: Path | None, count: int) -> np.ndarray | None:
    if path is None:
        return None
    labels = read_idx(path, LABEL_MAGIC)
    if len(labels) != count:
        raise InputError(f"{path}: {len(labels)} labels for {count} images")
    return labels


def _positive(text: str) -> int:
    """argparse type: a whole number of at least 1 (argparse prints the one-line error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="PNG or IDX files")
    parser.add_argument("--address", default="localhost:8001", help="server HOST:PORT")
    parser.add_argument("--model", default="", help="model name (default: the server's)")
    parser.add_argument("--version", type=int, default=0, help="model version (0: latest)")
    parser.add_argument("--gates", action="store_true", help="also print gate activity")
    parser.add_argument("--stream", action="store_true",
                        help="one PredictStream, one request per image, all in flight "
                             "(faster for many images) instead of one Predict per file")
    parser.add_argument("--batch", type=_positive, default=1024, metavar="N",
                        help="images per Predict call at most (default 1,024; the server's "
                             "--max-request-images defaults to 4,096)")
    parser.add_argument("--labels", type=Path, default=None, metavar="IDX",
                        help="IDX label file (e.g. t10k-labels-idx1-ubyte.gz): report accuracy")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds per request (--stream: per 1,000 images)")
    channels.add_flags(parser)
    args = parser.parse_args(argv)
    try:
        transport = channels.from_args(args)
        batches = [(path, load(path)) for path in args.files]
        labels = _labels(args.labels, sum(len(images) for _, images in batches))
        channel = transport.channel(args.address, options=[
            ("grpc.max_receive_message_length", 256 << 20),
            ("grpc.max_send_message_length", 256 << 20)])
    except (InputError, IdxError, channels.ChannelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    headers = transport.headers
    digits: list[int] = []
    failed = 0
    start = time.perf_counter()
    with channel:
        stub = hw_grpc.ClassifierStub(channel)
        try:
            layers = []
            if args.gates:
                info = stub.GetModelInfo(hw.GetModelInfoRequest(
                    model_name=args.model, model_version=args.version), timeout=args.timeout,
                    metadata=headers)
                layers = list(info.highway_layers)
            send = _streamed if args.stream else _unary
            for where, p in send(stub, batches, args, headers):
                if isinstance(p, hw.Error):  # this image only; the stream goes on
                    print(f"error: {where}: {p.code}: {p.message}", file=sys.stderr)
                    failed += 1
                    digits.append(-1)
                    continue
                digits.append(p.digit)
                line = f"{where}: {p.digit} (confidence {p.confidence:.3f})"
                if args.gates:
                    line += "  gates " + " ".join(
                        f"{name}={g:.3f}" for name, g in zip(layers, p.gate_activity,
                                                             strict=False))
                print(line)
        except grpc.RpcError as e:
            print(f"error: {args.address}: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - start
    summary = (f"{len(digits)} images in {seconds:.2f} s ({len(digits) / seconds:,.0f} images/s, "
               f"{'PredictStream' if args.stream else 'Predict'})")
    if labels is not None:
        right = int((np.array(digits) == labels).sum())
        summary += f"; accuracy {100 * right / len(labels):.2f} % ({right}/{len(labels)})"
    print(summary, file=sys.stderr)
    return 1 if failed else 0


def run() -> int:
    """``main`` for the console: output piped into ``head`` ends quietly."""
    try:
        return main()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(run())
