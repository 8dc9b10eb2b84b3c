"""Model repositories for the lifecycle tests: copies of the tiny exported one, edited."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from protos.inference import grpc_service_pb2 as kserve
from protos.inference import model_config_pb2 as mc

MODEL = "highway_mnist"


def copy_repository(tiny: Path, dest: Path, versions=(1,), config: str = "",
                    name: str = MODEL) -> Path:
    """``dest`` holding ``name`` with the given versions (each a copy of the tiny model's 1/);
    ``config`` is protobuf text merged into its config.pbtxt."""
    model_dir = dest / name
    model_dir.mkdir(parents=True)
    for file in ("config.pbtxt", "labels.txt"):
        shutil.copyfile(tiny / MODEL / file, model_dir / file)
    for v in versions:
        shutil.copytree(tiny / MODEL / "1", model_dir / str(v))
    edit_config(model_dir, config, name=name)
    return dest


def edit_config(model_dir: Path, text: str, name: str | None = None,
                clear: tuple[str, ...] = ()) -> None:
    """Merges protobuf text into the model's config.pbtxt (written in one rename), after
    clearing the ``clear`` fields."""
    path = model_dir / "config.pbtxt"
    config = text_format.Parse(path.read_text(), mc.ModelConfig())
    for field in clear:
        config.ClearField(field)
    text_format.Merge(text, config)
    if name is not None:
        config.name = name
    staged = model_dir / ".config.pbtxt.tmp"
    staged.write_text(text_format.MessageToString(config))
    os.replace(staged, path)


def add_version(model_dir: Path, version: int, source: Path) -> None:
    """Copies ``source`` (a version folder) in as ``version``: written aside, then one rename."""
    staging = model_dir / f".staging-{version}"
    shutil.copytree(source, staging)
    os.rename(staging, model_dir / str(version))


def add_corrupt_version(model_dir: Path, version: int) -> None:
    staging = model_dir / f".staging-{version}"
    staging.mkdir()
    (staging / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)) * 40)
    os.rename(staging, model_dir / str(version))


def infer_request(images: np.ndarray, model: str = MODEL,
                  version: str = "") -> kserve.ModelInferRequest:
    request = kserve.ModelInferRequest(model_name=model, model_version=version)
    request.inputs.add(name="images", datatype="UINT8", shape=list(images.shape))
    request.raw_input_contents.append(images.tobytes())
    return request


def index(running, ready: bool = False) -> list[tuple[str, str, str, str]]:
    """RepositoryIndex over real gRPC, as (name, version, state, reason) rows."""
    response = running.kserve.RepositoryIndex(kserve.RepositoryIndexRequest(ready=ready))
    return [(m.name, m.version, m.state, m.reason) for m in response.models]


def served_versions(running, model: str = MODEL) -> list[str]:
    return list(running.kserve.ModelMetadata(kserve.ModelMetadataRequest(name=model)).versions)
