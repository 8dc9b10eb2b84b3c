"""A model's ``config.pbtxt`` as the server applies it (Triton's fields; flags fill the gaps).

Honoured: ``max_batch_size`` (images per ONNX Runtime run), ``dynamic_batching
{ max_queue_delay_microseconds, preferred_batch_size }``, ``version_policy``
(``latest { num_versions }``, default 1; ``all``; ``specific { versions }``) and the
input/output names, types and dims, checked against the ONNX model at load. What
a config leaves unsaid comes from the server's flags; a model folder without a
``config.pbtxt`` gets its tensors from the ONNX model itself. Every problem is a
:class:`ModelLoadError` whose one line names the field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf import text_format

from protos.inference import model_config_pb2 as mc
from server.batching import BatchSettings
from server.errors import ModelLoadError, NotYet

if TYPE_CHECKING:
    from server.runtime import Runtime, TensorSpec
    from server.settings import Settings

log = logging.getLogger(__name__)

CONFIG_FILE = "config.pbtxt"
PLATFORM = "onnxruntime_onnx"
_TYPES = {"UINT8": mc.TYPE_UINT8, "FP32": mc.TYPE_FP32}


@dataclass(frozen=True)
class ModelPlan:
    """What the server does with one model: its completed config and its batching."""

    config: mc.ModelConfig
    """The config as applied (every field the server reads filled in); tensors may be
    empty until :func:`complete` has seen the ONNX model (no config.pbtxt)."""
    batch: BatchSettings
    from_file: bool
    """False when the folder had no config.pbtxt and the defaults apply."""


def read(model_dir: Path) -> mc.ModelConfig | None:
    """The parsed config.pbtxt, or None when there is none (fields outside our subset skipped)."""
    path = model_dir / CONFIG_FILE
    if not path.exists():
        return None
    try:
        text = path.read_text()
    except OSError as e:  # being written, or not readable yet: try again later
        raise NotYet(f"{path}: cannot read yet ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"{path}: not a valid model config: not UTF-8 text") from None
    try:
        return text_format.Parse(text, mc.ModelConfig(), allow_unknown_field=True)
    except text_format.ParseError as e:
        raise ModelLoadError(f"{path}: not a valid model config: {e}") from None


def plan(model_dir: Path, settings: Settings) -> ModelPlan:
    """Reads ``model_dir``'s config and fills what it leaves unsaid from ``settings``."""
    where = model_dir / CONFIG_FILE
    parsed = read(model_dir)
    config = mc.ModelConfig() if parsed is None else parsed
    if parsed is None:
        log.info("%s: no %s; using the defaults (tensors from the ONNX model, --max-batch-size "
                 "%d, --max-queue-delay-us %d, latest version)", model_dir, CONFIG_FILE,
                 settings.max_batch_size, settings.max_queue_delay_us)
    if config.name and config.name != model_dir.name:
        raise ModelLoadError(f"{where}: name {config.name!r} differs from the folder name "
                             f"{model_dir.name!r}")
    config.name = model_dir.name
    config.platform = config.platform or PLATFORM
    if config.max_batch_size < 0:
        raise ModelLoadError(f"{where}: max_batch_size {config.max_batch_size} is negative")
    # 0 (or absent): the config says nothing, so the server's flag applies.
    config.max_batch_size = config.max_batch_size or settings.max_batch_size
    dynamic = config.dynamic_batching
    if not config.HasField("dynamic_batching"):
        dynamic.max_queue_delay_microseconds = settings.max_queue_delay_us
    for size in dynamic.preferred_batch_size:
        if not 1 <= size <= config.max_batch_size:
            raise ModelLoadError(f"{where}: dynamic_batching.preferred_batch_size {size} is not "
                                 f"within 1..max_batch_size ({config.max_batch_size})")
    _check_policy(config.version_policy, where)
    batch = BatchSettings(config.max_batch_size, dynamic.max_queue_delay_microseconds,
                          settings.max_queue, tuple(sorted(set(dynamic.preferred_batch_size))))
    return ModelPlan(config, batch, parsed is not None)


def _check_policy(policy: mc.ModelVersionPolicy, where: Path) -> None:
    kind = policy.WhichOneof("policy_choice")
    if kind is None:
        policy.latest.num_versions = 1
    elif kind == "latest" and policy.latest.num_versions < 1:
        raise ModelLoadError(f"{where}: version_policy.latest.num_versions must be at least 1")
    elif kind == "specific":
        bad = [v for v in policy.specific.versions if v < 1]
        if not policy.specific.versions or bad:
            raise ModelLoadError(f"{where}: version_policy.specific.versions must list positive "
                                 f"version numbers, not {list(policy.specific.versions)}")


def select(policy: mc.ModelVersionPolicy, available: list[int]) -> list[int]:
    """The versions the policy serves, of those present (Triton's semantics), ascending."""
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return sorted(available)
    if kind == "specific":
        return sorted(set(policy.specific.versions))  # missing ones are reported, not skipped
    return sorted(available)[-max(1, policy.latest.num_versions):] if available else []


def complete(config: mc.ModelConfig, runtime: Runtime, where: Path) -> mc.ModelConfig:
    """The config checked against the ONNX model (tensors filled in when it named none)."""
    if not config.input and not config.output:
        done = mc.ModelConfig()
        done.CopyFrom(config)
        done.input.extend(_tensor(mc.ModelInput, t) for t in runtime.inputs)
        done.output.extend(_tensor(mc.ModelOutput, t) for t in runtime.outputs)
        return done
    _check_tensors("input", config.input, runtime.inputs, where)
    _check_tensors("output", config.output, runtime.outputs, where)
    return config


def _tensor(kind, spec: TensorSpec):
    return kind(name=spec.name, data_type=_TYPES.get(spec.datatype, mc.TYPE_INVALID),
                dims=list(spec.shape[1:]))


def _check_tensors(kind: str, declared, actual: list[TensorSpec], where: Path) -> None:
    """Every declared tensor exists in the model with its type and dims, and none is missing."""
    by_name = {t.name: t for t in actual}
    for i, want in enumerate(declared):
        field = f"{kind}[{i}]"
        spec = by_name.get(want.name)
        if spec is None:
            raise ModelLoadError(f"{where}: {field}.name {want.name!r} is not a model {kind}; "
                                 f"the model has {sorted(by_name)}")
        if _TYPES.get(spec.datatype) != want.data_type:
            raise ModelLoadError(f"{where}: {field}.data_type is "
                                 f"{mc.DataType.Name(want.data_type)} but {want.name!r} is "
                                 f"{spec.datatype} in the model")
        dims, model_dims = list(want.dims), list(spec.shape[1:])
        if len(dims) != len(model_dims) or any(
                a != b for a, b in zip(dims, model_dims, strict=True) if b != -1):
            raise ModelLoadError(f"{where}: {field}.dims are {dims} but {want.name!r} has "
                                 f"{model_dims} (after the batch dimension) in the model")
    missing = sorted(set(by_name) - {t.name for t in declared})
    if missing:
        raise ModelLoadError(f"{where}: {kind} {missing[0]!r} of the model is not declared in "
                             "the config")
