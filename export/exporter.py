"""``export_model``: .keras → verified ONNX version in a Triton-layout model repository."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from export import convert, gates, repository, verify
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
        log: where progress lines go (``print`` by default; tests pass a no-op).

    Returns:
        The path of the written ``model.onnx``.

    Raises:
        ExportError: with a one-line reason (bad input, unwritable folder, failed check).
    """
    keras_path, repo = Path(keras_path), Path(repository_dir)
    repository.check_name(name)
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
        try:
            onnx.save(proto, onnx_path)
        except OSError as e:
            raise ExportError(f"cannot write {onnx_path}: {e.strerror}") from None
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
