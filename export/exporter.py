"""``export_model``: .keras → verified ONNX version in a Triton-layout model repository."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from export import convert, gates, repository, verify
from export import quantize as quantization
from export.errors import ExportError
from training import model_api


def export_model(
    keras_path: str | os.PathLike[str],
    repository_dir: str | os.PathLike[str],
    name: str = repository.DEFAULT_NAME,
    version: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    images: int = verify.MIN_IMAGES,
    with_keras: bool = False,
    quantize: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Convert ``keras_path``, fuse its gates, verify it and add it to the repository.

    Args:
        keras_path: a ``model.keras`` written by ``highway-train``.
        repository_dir: the model repository (created if missing).
        name: the model's folder name.
        version: the version folder; None picks the next free integer.
        data_dir: MNIST IDX folder for verification (see ``export.verify.resolve_data``).
        images: real test images the verification compares (at least 1,000).
        with_keras: also copy the .keras file into the version folder.
        quantize: ``"int8"`` writes the int8 model (``export.quantize.SHIPPED``),
            calibrated on the first training images of ``data_dir``, instead of fp32.
        log: where progress lines go (``print`` by default; tests pass a no-op).

    Returns:
        The path of the written ``model.onnx``.

    Raises:
        ExportError: with a one-line reason (bad input, unwritable folder, failed check).
    """
    keras_path, repo = Path(keras_path), Path(repository_dir)
    repository.check_name(name)
    if quantize is not None and quantize not in quantization.CHOICES:
        raise ExportError(f"--quantize {quantize!r} is not supported; choose from "
                          f"{', '.join(quantization.CHOICES)}")
    verify.check_images(images)  # refused before any slow work
    start = time.perf_counter()
    model = convert.load_keras(keras_path)
    layers = model_api.highway_layer_names(model)
    if not layers:
        raise ExportError(f"{keras_path}: the model has no highway layers to export")
    repository.check_same_interface(repo / name, layers)
    staging, version, final = repository.stage(repo, name, version)
    try:
        log(f"converting {model.name} ({len(layers)} highway layers) with tf2onnx, "
            f"opset {convert.OPSET}")
        proto = convert.to_onnx(model)
        fused = gates.fuse_highway_gates(proto, layers)
        log(f"fused {fused} highway gates into {gates.DOMAIN}.{gates.FUNCTION} function nodes")
        repository.set_metadata(proto, repository.metadata(
            keras_path, layers, convert.OPSET, verify.library_versions()))
        onnx_path = staging / "model.onnx"
        float_path = staging / ".model.fp32.onnx" if quantize else onnx_path
        try:
            onnx.save(proto, float_path)
        except OSError as e:
            raise ExportError(f"cannot write {float_path}: {e.strerror}") from None
        if quantize:
            _quantize(float_path, onnx_path, data_dir, log)
        log("verifying against the Keras model")
        report = verify.verify(onnx_path, keras_path, data_dir=data_dir, images=images,
                               keras_model=model, log=log)
        log(verify.summary(report))
        repository.copy_run_files(keras_path, staging, with_keras)
        repository.write_model_files(repo / name, name, layers)
        repository.commit(staging, final)
    except BaseException:
        repository.discard(staging)
        raise
    log(f"wrote {final / 'model.onnx'} in {time.perf_counter() - start:.1f} s")
    return final / "model.onnx"


def _quantize(float_path: Path, onnx_path: Path, data_dir: str | os.PathLike[str] | None,
              log: Callable[[str], None]) -> None:
    """fp32 model → int8 model, calibrated on the first training images (never test ones)."""
    folder, origin = verify.resolve_data(data_dir)
    try:
        train = model_api.load_mnist(folder).x_train[:quantization.CALIBRATION_IMAGES]
    except model_api.MnistDataError as e:
        raise ExportError(f"calibration data: {e}") from None
    recipe = quantization.SHIPPED
    log(f"quantizing to int8 ({recipe.name}), calibrated on the first {len(train):,} "
        f"training images ({origin})")
    what = quantization.quantize(float_path, onnx_path, train, recipe)
    float_path.unlink()
    log(f"int8 weights in {what['weight_ops_int8']} of {what['weight_ops']} weight ops; "
        f"{what['gate_nodes']} gate nodes kept, their bodies float "
        f"({what['gate_inputs_quantized']} of {what['gate_inputs']} gate inputs through Q/DQ)")
