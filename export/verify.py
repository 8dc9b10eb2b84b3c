"""Verification: the exported model provably computes what the Keras model computes.

Checks, in order: ``onnx.checker`` (full), the gate structure (one ``HighwayGate``
node per Keras highway layer, named after it, the function body as built, no
loose Sigmoid), and parity on real MNIST test images — probabilities within
``TOLERANCE``, identical top-1 for every image, gate means within ``TOLERANCE``.
An int8 model (``quantization`` in its metadata) must also have int8 weights in
every weight op and is held to ``export.criteria.INT8`` instead. Writes
``verification.json`` beside the model, passed or not.

``python -m export.verify MODEL.onnx --keras model.keras [--data-dir DIR] [--images N]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from export import criteria, gates, parity, plots, quantize
from export.errors import ExportError, VerificationError
from export.repository import sha256
from highway_core import drift
from highway_core.messages import first_line, one_line
from highway_core.versions import library_versions as _versions
from training import model_api

if TYPE_CHECKING:
    import keras

TOLERANCE = 1e-5  # max |keras − onnx| allowed on probabilities and gate means
MIN_IMAGES = 1000  # parity needs at least this many real test images
# Relative to the working directory (a checkout's root), not to this file: installed
# with a plain `pip install .`, this file lives in site-packages, beside no tests/.
FIXTURE_DIR = Path("tests", "fixtures", "mnist")
REPORT_NAME = "verification.json"


def resolve_data(data_dir: str | os.PathLike[str] | None) -> tuple[str | None, str]:
    """Where verification images come from: (IDX folder or None for Keras', how chosen)."""
    if data_dir is not None:
        return str(data_dir), "--data-dir"
    if os.environ.get(model_api.DATA_DIR_ENV):
        return os.environ[model_api.DATA_DIR_ENV], f"${model_api.DATA_DIR_ENV}"
    if FIXTURE_DIR.is_dir():
        return str(FIXTURE_DIR), "repository test fixture"
    return None, "keras.datasets.mnist downloader"


def structure_problems(model: onnx.ModelProto, layer_names: list[str]) -> list[str]:
    """Everything wrong with the gate structure; empty when it is as the export builds it."""
    problems = []
    nodes = gates.gate_nodes(model)
    names = [n.name for n in nodes]
    if names != list(layer_names):
        problems.append(f"gate nodes {names} != highway layers {list(layer_names)}")
    functions = [f for f in model.functions if (f.domain, f.name) == (gates.DOMAIN, gates.FUNCTION)]
    if len(functions) != 1:
        problems.append(f"expected one {gates.FUNCTION} function, found {len(functions)}")
    elif tuple(n.op_type for n in functions[0].node) != gates.BODY_OPS:
        body = [n.op_type for n in functions[0].node]
        problems.append(f"{gates.FUNCTION} body is {body}, expected {list(gates.BODY_OPS)}")
    loose = [n.name for n in model.graph.node if n.op_type == "Sigmoid"]
    if loose:
        problems.append(f"loose Sigmoid nodes in the main graph: {loose}")
    return problems


def verify(onnx_path: str | os.PathLike[str], keras_path: str | os.PathLike[str],
           data_dir: str | os.PathLike[str] | None = None, images: int = MIN_IMAGES,
           keras_model: keras.Model | None = None,
           log: Callable[[str], None] | None = None) -> dict:
    """Run every check, write ``verification.json`` beside the model, return the report.

    ``keras_model`` saves loading ``keras_path`` again; ``log`` gets progress lines.

    Raises ``VerificationError`` (after writing the report) when a check fails.
    """
    from export import convert

    start = time.perf_counter()
    onnx_path = Path(onnx_path)
    check_images(images)
    if not onnx_path.is_file():
        raise ExportError(f"ONNX model not found: {onnx_path}")
    model = keras_model if keras_model is not None else convert.load_keras(keras_path)
    layers = model_api.highway_layer_names(model)
    folder, origin = resolve_data(data_dir)
    try:
        data = model_api.load_mnist(folder)
    except model_api.MnistDataError as e:
        raise ExportError(f"verification data: {e}") from None
    if len(data.x_test) < images:
        raise ExportError(f"verification data {data.source} has {len(data.x_test)} test "
                          f"images; at least {images} are needed")
    x, labels = data.x_test[:images], data.y_test[:images]
    report: dict = {
        "passed": False, "model": onnx_path.name, "keras_model": Path(keras_path).name,
        "keras_sha256": sha256(Path(keras_path)), "data": _display(data.source),
        "data_origin": origin, "images": int(len(x)),
        "highway_layers": layers,
    }
    try:
        proto = onnx.load(onnx_path)
    except Exception as e:  # noqa: BLE001 - protobuf's decode errors share no base
        return _fail(report, onnx_path, start, f"cannot load {onnx_path}: {e}")
    recipe = quantize.recipe_of(proto)
    bounds = criteria.for_model(recipe is not None)
    report["tolerance"] = TOLERANCE if recipe is None else bounds.as_report()
    if recipe is not None:
        report["quantization"] = recipe
        report["quantized"] = quantize.summary(proto)
    report["opset"] = next((o.version for o in proto.opset_import if o.domain == ""), None)
    report["gate_nodes"] = [n.name for n in gates.gate_nodes(proto)]
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        return _fail(report, onnx_path, start,
                     f"onnx.checker rejected the model: {first_line(e)}")
    report["checker"] = "passed (full_check)"
    problems = structure_problems(proto, layers)
    if recipe is not None:
        problems += quantize.problems(proto)
    if problems:
        return _fail(report, onnx_path, start, "; ".join(problems))
    report["structure"] = "passed"

    log = log or (lambda line: None)
    p_keras, g_keras = parity.keras_outputs(model, x, log)
    try:
        p_onnx, g_onnx = parity.onnx_outputs(onnx_path, x)
    except Exception as e:  # noqa: BLE001 - ORT's own types for graphs it cannot run
        return _fail(report, onnx_path, start, f"ONNX Runtime could not run the model: {e}")
    if p_onnx.shape != p_keras.shape or g_onnx.shape != g_keras.shape:
        return _fail(report, onnx_path, start, f"output shapes differ: onnx {p_onnx.shape}, "
                     f"{g_onnx.shape}; keras {p_keras.shape}, {g_keras.shape}")
    top_keras, top_onnx = p_keras.argmax(1), p_onnx.argmax(1)
    ordered = np.sort(p_keras, axis=1)
    report.update({
        "max_abs_diff_probabilities": float(np.max(np.abs(p_keras - p_onnx))),
        "max_abs_diff_gate_activity": float(np.max(np.abs(g_keras - g_onnx))),
        "top1_agreement": float(np.mean(top_keras == top_onnx)),
        "top1_mismatches": int(np.sum(top_keras != top_onnx)),
        "min_top1_margin": float(np.min(ordered[:, -1] - ordered[:, -2])),
        "accuracy_keras": float(np.mean(top_keras == labels)),
        "accuracy_onnx": float(np.mean(top_onnx == labels)),
        "mean_gate_activity": [round(float(v), 6) for v in g_onnx.mean(axis=0)],
    })
    try:
        drawn = plots.verification_figure(
            onnx_path.parent / plots.FILENAME, np.abs(p_keras - p_onnx),
            bounds.plot_tolerance(), layers,
            g_keras, g_onnx, f"{model.name}: ONNX Runtime vs Keras on {len(x):,} real MNIST "
            f"test images ({report['data']})")
    except OSError as e:
        raise ExportError(f"cannot write {plots.FILENAME}: {e.strerror}") from None
    report["figure_images"] = int(drawn.sum())  # the histogram's count: every image, or a bug
    failures = bounds.failures(report)
    if failures:
        return _fail(report, onnx_path, start, "parity failed: " + "; ".join(failures))
    # The verified gate activity is the server's drift baseline (highway_core.drift).
    reference = drift.build(g_onnx, layers, f"{len(x)} test images of {report['data']}")
    try:
        reference.write(onnx_path.parent / drift.FILENAME)
    except OSError as e:
        raise ExportError(f"cannot write {drift.FILENAME}: {e.strerror}") from None
    report["gate_reference"] = drift.FILENAME
    report["passed"] = True
    _write(report, onnx_path, start)
    return report


def summary(report: dict) -> str:
    """One line with the figures a person checks first."""
    return (f"verified on {report['images']} test images ({report['data_origin']}): "
            f"max |dp| {report['max_abs_diff_probabilities']:.2e}, "
            f"max |dgate| {report['max_abs_diff_gate_activity']:.2e}, "
            f"top-1 agreement {report['top1_agreement']:.2%}, "
            f"accuracy {report['accuracy_onnx']:.2%} (Keras {report['accuracy_keras']:.2%}), "
            f"{len(report['gate_nodes'])} gate nodes")


def _display(source: str) -> str:
    """A data source as recorded: relative inside the working directory (the checkout's root),
    else just the folder name (reports are committed with the shipped model; no machine
    paths in them)."""
    path = Path(source)
    if not path.is_dir():
        return source  # e.g. "keras.datasets.mnist"
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


def library_versions() -> dict[str, str]:
    """Versions of everything that shaped the exported graph (recorded in metadata)."""
    return _versions("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")


def check_images(images: int) -> None:
    """``--images`` below the minimum is refused (before any slow work)."""
    if images < MIN_IMAGES:
        raise ExportError(f"--images must be at least {MIN_IMAGES}, got {images}")


def _fail(report: dict, onnx_path: Path, start: float, reason: str) -> dict:
    report["reason"] = reason
    _write(report, onnx_path, start)
    raise VerificationError(f"verification failed: {reason}")


def _write(report: dict, onnx_path: Path, start: float) -> None:
    report["versions"] = library_versions()
    report["time"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    report["seconds"] = round(time.perf_counter() - start, 2)
    try:
        (onnx_path.parent / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    except OSError as e:
        raise ExportError(f"cannot write {onnx_path.parent / REPORT_NAME}: {e.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    """CLI: verify an exported model against its Keras source; exit 1 on failure."""
    p = argparse.ArgumentParser(prog="python -m export.verify",
                                description="Check an exported ONNX model against its .keras "
                                "source and write verification.json beside it.")
    p.add_argument("model", help="the exported model.onnx")
    p.add_argument("--keras", required=True, help="the .keras model it was exported from")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: "
                   "$HIGHWAY_DATA_DIR, then tests/fixtures/mnist under the working directory, then "
                   "Keras' downloader)")
    p.add_argument("--images", type=int, default=MIN_IMAGES,
                   help=f"test images to compare (at least {MIN_IMAGES})")
    args = p.parse_args(argv)
    try:
        report = verify(args.model, args.keras, args.data_dir, args.images,
                        log=lambda line: print(line, flush=True))
    except ExportError as e:
        print(f"export.verify: {one_line(e)}", file=sys.stderr)
        return 1
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
