"""The model repository on disk: Triton's layout, read one model version at a time.

``REPO/<model>/config.pbtxt`` (optional; see :mod:`server.model_config`) and
``REPO/<model>/<N>/model.onnx``. Folders starting with a dot are never read, so a
version can be written under ``.staging`` and renamed into place (one atomic
step). A *fingerprint* (names, sizes and modification times of a version's files
and of the config) tells the poller what changed since the last look.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from highway_core.facts import MODEL_FILENAME, MODEL_NAME, version_folders
from protos.inference import model_config_pb2 as mc
from server import model_config
from server.batching import Batcher, BatchSettings
from server.errors import ModelLoadError, NotYet
from server.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_MODEL = MODEL_NAME
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass
class ModelVersion:
    """One loaded version: its session, applied config and the names the API reports."""

    name: str
    version: int
    runtime: Runtime
    config: mc.ModelConfig
    highway_layers: list[str]
    output_names: list[str] = field(default_factory=list)
    """The config's outputs in its order: what ModelInfer returns when none are asked for."""
    batch: BatchSettings = BatchSettings()
    """How this version's requests are merged into runs (its config, flags as defaults)."""
    batcher: Batcher | None = None
    """Set by the registry once the version is warm."""


def model_names(root: Path) -> list[str]:
    """The model folders of the repository (hidden ones skipped), sorted."""
    if not root.is_dir():
        raise ModelLoadError(f"model repository {root} not found (see README: making a model "
                             "repository)")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def version_numbers(model_dir: Path) -> list[int]:
    """The version folders (positive integers) of a model, ascending."""
    try:
        return version_folders(model_dir)
    except OSError:  # removed or renamed meanwhile
        return []


def fingerprint(model_dir: Path, version: int) -> Fingerprint:
    """What identifies one version's files and the model's config (a change means reload).

    The config counts by content (exporters rewrite it unchanged), model files by
    size and modification time (they are large, and a new copy gets a new time).
    """
    entries = []
    try:
        digest = hashlib.sha256((model_dir / model_config.CONFIG_FILE).read_bytes()).hexdigest()
        entries.append((model_config.CONFIG_FILE, 0, int(digest[:15], 16)))
    except OSError:
        pass  # none (defaults apply) or unreadable (reported when it is read)
    for path in sorted((model_dir / str(version)).rglob("*")):
        try:
            st = path.stat()
        except OSError:
            continue
        if path.is_file():
            entries.append((str(path.relative_to(model_dir)), st.st_size, st.st_mtime_ns))
    return tuple(entries)


def _model_file(model_dir: Path, config: mc.ModelConfig, version: int) -> Path:
    """The version's ONNX file, readable; NotYet while it is missing or unreadable."""
    path = model_dir / str(version) / (config.default_model_filename or MODEL_FILENAME)
    if not (model_dir / str(version)).is_dir():
        raise ModelLoadError(f"{model_dir}: version {version} has no folder")
    try:
        with path.open("rb") as f:
            f.read(1)
    except FileNotFoundError:
        raise NotYet(f"{path}: model file not found") from None
    except OSError as e:
        raise NotYet(f"{path}: cannot read yet ({e.strerror or type(e).__name__})") from None
    return path


def _highway_layers(config: mc.ModelConfig, runtime: Runtime) -> list[str]:
    raw = runtime.metadata.get("highway_layers")
    if raw:
        try:
            return [str(n) for n in json.loads(raw)]
        except ValueError:
            pass
    param = config.parameters.get("highway_layers")
    return [n for n in param.string_value.split(",") if n] if param else []


def load_version(model_dir: Path, config: mc.ModelConfig, version: int, device: str,
                 intra_op_threads: int) -> ModelVersion:
    """Loads one version and checks it against the config (ModelLoadError, one line)."""
    path = _model_file(model_dir, config, version)
    runtime = Runtime(path, device, intra_op_threads)
    applied = model_config.complete(config, runtime, path)
    return ModelVersion(config.name or model_dir.name, version, runtime, applied,
                        _highway_layers(applied, runtime), [o.name for o in applied.output])
