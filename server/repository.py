"""Finds and loads every model version of a Triton-layout repository.

``REPO/<model>/config.pbtxt`` (Triton's text format, parsed into our own
``ModelConfig`` subset, unknown fields allowed) and ``REPO/<model>/<N>/model.onnx``;
each version gets its own ONNX Runtime session, cross-checked against the config.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from highway_core import drift
from highway_core.facts import GATE_ACTIVITY, MODEL_FILENAME, MODEL_NAME, version_folders
from protos.inference import model_config_pb2 as mc
from server.errors import ModelLoadError, NotFound
from server.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_MODEL = MODEL_NAME
_DATATYPES = {mc.TYPE_UINT8: "UINT8", mc.TYPE_FP32: "FP32"}


@dataclass
class ModelVersion:
    """One loaded version: its session, config and the names the API reports."""

    name: str
    version: int
    runtime: Runtime
    config: mc.ModelConfig
    highway_layers: list[str]
    output_names: list[str] = field(default_factory=list)
    """The config's outputs in its order: what ModelInfer returns when none are asked for."""
    gate_reference: drift.GateReference | None = None
    """The gate activity of the verification images (drift baseline); None if not recorded."""


@dataclass
class Repository:
    """Loaded models by name, then version."""

    models: dict[str, dict[int, ModelVersion]]

    def get(self, name: str, version: int = 0) -> ModelVersion:
        """The named model's version (0: latest); NotFound names what exists."""
        name = name or DEFAULT_MODEL
        versions = self.models.get(name)
        if versions is None:
            raise NotFound(f"unknown model {name!r}; loaded: {', '.join(sorted(self.models))}")
        if version == 0:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version}; loaded: "
                           f"{', '.join(map(str, sorted(versions)))}")
        return versions[version]

    def all(self) -> list[ModelVersion]:
        """Every loaded version, by model name then version."""
        return [v for name in sorted(self.models) for _, v in sorted(self.models[name].items())]


def read_config(path: Path) -> mc.ModelConfig:
    """Parses a config.pbtxt (fields outside our subset are skipped)."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: config.pbtxt not found")
    try:
        return text_format.Parse(path.read_text(), mc.ModelConfig(), allow_unknown_field=True)
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path}: not a valid model config: {e}") from None


def _check(config: mc.ModelConfig, runtime: Runtime, where: Path) -> None:
    """The config and the ONNX model must describe the same tensors."""
    if config.max_batch_size < 1:
        raise ModelLoadError(f"{where}: max_batch_size must be at least 1 (batched model)")
    declared = {t.name: t for t in [*config.input, *config.output]}
    actual = {t.name: t for t in [*runtime.inputs, *runtime.outputs]}
    if set(declared) != set(actual):
        raise ModelLoadError(f"{where}: config tensors {sorted(declared)} do not match the "
                             f"model's {sorted(actual)}")
    for name, spec in actual.items():
        want = declared[name]
        if _DATATYPES.get(want.data_type) != spec.datatype:
            raise ModelLoadError(f"{where}: tensor {name!r} is {spec.datatype} in the model but "
                                 f"{mc.DataType.Name(want.data_type)} in the config")
        dims = tuple(want.dims)
        if len(dims) != len(spec.shape) - 1 or any(
                a != b for a, b in zip(dims, spec.shape[1:], strict=False) if b != -1):
            raise ModelLoadError(f"{where}: tensor {name!r} has shape {list(spec.shape)} in the "
                                 f"model but dims {list(dims)} in the config")


def _highway_layers(config: mc.ModelConfig, runtime: Runtime) -> list[str]:
    raw = runtime.metadata.get("highway_layers")
    if raw:
        try:
            return [str(n) for n in json.loads(raw)]
        except ValueError:
            pass
    param = config.parameters.get("highway_layers")
    return [n for n in param.string_value.split(",") if n] if param else []


def _gate_reference(runtime: Runtime, folder: Path, layers: list[str]
                    ) -> drift.GateReference | None:
    """The version's gate reference, named by the ONNX metadata (older exports: the default
    file name); a file that is there but broken or for other layers fails the load."""
    path = folder / runtime.metadata.get(drift.METADATA_KEY, drift.FILENAME)
    if not path.is_file() or not layers or GATE_ACTIVITY not in runtime.output_names:
        log.info("%s: no gate reference; gate drift is not computed for it", folder)
        return None
    try:
        return drift.read(path, layers)
    except drift.ReferenceError as e:
        raise ModelLoadError(str(e)) from None


def load_version(model_dir: Path, config: mc.ModelConfig, version: int, device: str,
                 intra_op_threads: int) -> ModelVersion:
    """Loads and checks one ``<model>/<version>/model.onnx``."""
    path = model_dir / str(version) / (config.default_model_filename or MODEL_FILENAME)
    runtime = Runtime(path, device, intra_op_threads)
    _check(config, runtime, path)
    layers = _highway_layers(config, runtime)
    return ModelVersion(config.name or model_dir.name, version, runtime, config, layers,
                        [o.name for o in config.output],
                        _gate_reference(runtime, path.parent, layers))


def load(root: Path, device: str = "auto", intra_op_threads: int = 0) -> Repository:
    """Loads every model version under ``root``; ModelLoadError (one line) on any problem."""
    if not root.is_dir():
        raise ModelLoadError(f"model repository {root} not found (see README: making a model "
                             "repository)")
    models: dict[str, dict[int, ModelVersion]] = {}
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and
                            not p.name.startswith(".")):
        config = read_config(model_dir / "config.pbtxt")
        if config.name and config.name != model_dir.name:
            raise ModelLoadError(f"{model_dir}: config name {config.name!r} differs from the "
                                 "folder name")
        versions = version_folders(model_dir)
        if not versions:
            raise ModelLoadError(f"{model_dir}: no version folders (1/, 2/, …) with a model")
        models[model_dir.name] = {}
        for v in versions:
            loaded = load_version(model_dir, config, v, device, intra_op_threads)
            models[model_dir.name][v] = loaded
            log.info("loaded %s version %d on %s", model_dir.name, v, loaded.runtime.provider)
    if not models:
        raise ModelLoadError(f"model repository {root} holds no models (see README: making a model "
                             "repository)")
    return Repository(models)
