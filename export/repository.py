"""The Triton-layout model repository: ``REPO/<name>/<version>/model.onnx``.

A version is written into a hidden staging folder and renamed into place only
after it verified, so a server scanning the repository never sees half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx
from google.protobuf import text_format

from export.errors import ExportError
from highway_core import drift
from highway_core.facts import (
    COLS,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_QUEUE_DELAY_US,
    GATE_ACTIVITY,
    INPUT_NAME,
    MODEL_NAME,
    NUM_CLASSES,
    PROBABILITIES,
    ROWS,
    version_folders,
)
from protos.inference import model_config_pb2 as mc

DEFAULT_NAME = MODEL_NAME
LABELS = [str(d) for d in range(NUM_CLASSES)]
INPUT_SCALING = "uint8 pixels 0..255, divided by 255 inside the model"
RUN_FILES = ("metrics.json", "history.csv", "curves.png")  # copied from the run when present
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_name(name: str) -> str:
    """A model name usable as one folder name (Triton's rule of thumb), or ``ExportError``."""
    if not _NAME.fullmatch(name):
        raise ExportError(f"invalid model name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def versions(model_dir: Path) -> list[int]:
    """The integer version folders already in ``model_dir``, ascending."""
    return version_folders(model_dir) if model_dir.is_dir() else []


def stage(repository: Path, name: str, version: int | None) -> tuple[Path, int, Path]:
    """Create ``REPO/<name>/`` and a staging folder; returns (staging, version, final dir).

    ``name`` was checked with :func:`check_name` by the caller, before any slow work.
    """
    if version is not None and version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    model_dir = repository / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        existing = versions(model_dir)
        if version is None:
            version = (existing[-1] + 1) if existing else 1
        final = model_dir / str(version)
        if final.exists():
            raise ExportError(f"{final} already exists; choose another --version or remove it")
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=model_dir))
    except OSError as e:
        raise ExportError(f"cannot write model repository {repository}: {_reason(e)}") from None
    return staging, version, final


def commit(staging: Path, final: Path) -> None:
    """Move a verified staging folder to its version folder (one rename)."""
    try:
        staging.chmod(0o755)  # mkdtemp makes it owner-only; servers may run as another user
        os.rename(staging, final)
    except OSError as e:
        raise ExportError(f"cannot move the model into {final}: {_reason(e)}") from None


def discard(staging: Path) -> None:
    """Remove a staging folder after a failure; nothing half-written stays behind."""
    shutil.rmtree(staging, ignore_errors=True)


def config_text(name: str, highway_layers: Sequence[str],
                existing: mc.ModelConfig | None = None) -> str:
    """``config.pbtxt`` in protobuf text format; field names as Triton's model_config.proto.

    It states every field the server applies: tensors, ``max_batch_size`` (images per
    run), ``dynamic_batching`` and ``version_policy``. The serving fields of an
    ``existing`` config (an operator's batching or version policy) are kept.
    """
    layers = ",".join(highway_layers)
    max_batch = DEFAULT_MAX_BATCH_SIZE
    dynamic = f"{{ max_queue_delay_microseconds: {DEFAULT_QUEUE_DELAY_US} }}"
    policy = "{ latest { num_versions: 1 } }"
    if existing is not None:
        max_batch = existing.max_batch_size or max_batch
        if existing.HasField("dynamic_batching"):
            dynamic = _one_line(existing.dynamic_batching)
        if existing.HasField("version_policy"):
            policy = _one_line(existing.version_policy)
    return (
        f'name: "{name}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {max_batch}\n"
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_UINT8 dims: [ {ROWS}, {COLS} ] }} ]\n'
        "output [\n"
        f'  {{ name: "{PROBABILITIES}" data_type: TYPE_FP32 dims: [ {NUM_CLASSES} ] '
        'label_filename: "labels.txt" },\n'
        f'  {{ name: "{GATE_ACTIVITY}" data_type: TYPE_FP32 dims: [ {len(highway_layers)} ] }}\n'
        "]\n"
        f"dynamic_batching {dynamic}\n"
        f"version_policy: {policy}\n"
        f'parameters {{ key: "highway_layers" value: {{ string_value: "{layers}" }} }}\n'
    )


def _one_line(message) -> str:
    return "{ " + text_format.MessageToString(message, as_one_line=True) + " }"


def read_config(path: Path) -> mc.ModelConfig | None:
    """An existing config.pbtxt, or None when there is none or it does not parse."""
    try:
        return text_format.Parse(path.read_text(errors="replace"), mc.ModelConfig(),
                                 allow_unknown_field=True)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ExportError(f"cannot read {path}: {_reason(e)}") from None
    except text_format.ParseError:
        return None


def check_same_interface(model_dir: Path, highway_layers: Sequence[str]) -> None:
    """Refuse a new version whose gate outputs differ from the versions already there.

    One ``config.pbtxt`` describes every version (Triton's rule), and its
    ``gate_activity`` width is the number of highway layers.
    """
    if not versions(model_dir) or not (model_dir / "config.pbtxt").is_file():
        return
    parsed = read_config(model_dir / "config.pbtxt")
    param = parsed.parameters.get("highway_layers") if parsed is not None else None
    existing = param.string_value.split(",") if param else None
    if existing != list(highway_layers):
        raise ExportError(
            f"{model_dir} holds versions with highway layers {existing}, this model has "
            f"{list(highway_layers)}; export it under another --name or into another repository")


def write_model_files(model_dir: Path, name: str, highway_layers: Sequence[str]) -> None:
    """Write (replace) ``config.pbtxt`` and ``labels.txt`` beside the version folders."""
    try:
        existing = read_config(model_dir / "config.pbtxt")
        _write_atomic(model_dir / "config.pbtxt", config_text(name, highway_layers, existing))
        _write_atomic(model_dir / "labels.txt", "\n".join(LABELS) + "\n")
    except OSError as e:
        raise ExportError(f"cannot write model config in {model_dir}: {_reason(e)}") from None


def copy_run_files(keras_path: Path, version_dir: Path, with_keras: bool = False) -> list[str]:
    """Copy the training run's files (``RUN_FILES``) next to the model, those that are present.

    ``with_keras`` also copies the source model as ``model.keras``, so that the
    version can be re-verified from the repository alone (the shipped model does).
    """
    sources = [(keras_path.parent / file, file) for file in RUN_FILES]
    if with_keras:
        sources.append((keras_path, "model.keras"))
    copied = []
    try:
        for source, name in sources:
            if source.is_file():
                shutil.copyfile(source, version_dir / name)
                copied.append(name)
    except OSError as e:
        raise ExportError(f"cannot copy run files into {version_dir}: {_reason(e)}") from None
    return copied


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_metrics(keras_path: Path) -> dict:
    """The training run's metrics.json beside the .keras file, or {} when there is none."""
    try:
        return json.loads((keras_path.parent / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace the model's ``metadata_props`` with ``props`` (all strings)."""
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def metadata(keras_path: Path, highway_layers: Sequence[str], opset: int,
             versions_: dict[str, str]) -> dict[str, str]:
    """The contract's ``metadata_props``: provenance of the model, as strings."""
    metrics = run_metrics(keras_path)
    accuracy = metrics.get("test_accuracy")
    return {
        "highway_layers": json.dumps(list(highway_layers)),
        "source_sha256": sha256(keras_path),
        "test_accuracy": "" if accuracy is None else str(float(accuracy)),
        "training_command": str(metrics.get("command", "")),
        "versions": json.dumps(versions_, sort_keys=True),
        "opset": str(opset),
        "input_scaling": INPUT_SCALING,
        drift.METADATA_KEY: drift.FILENAME,  # written beside the model by the verification
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__
