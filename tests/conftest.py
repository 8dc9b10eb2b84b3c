"""Shared fixtures: the real MNIST subset, the committed tiny model repository, and a tiny
model trained and exported now.

``tiny_repository`` is a committed folder, so the server, reliability and bench
tests run without TensorFlow. TensorFlow is imported only inside the fixtures that
train or export (``tiny_keras_model``, ``exported_repository``); each runs once per
session: one training (~5 s), one export (~5 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import make_repository as recipe

FIXTURE_MNIST = recipe.MNIST
TINY_REPOSITORY = recipe.REPOSITORY  # committed; remade by python -m tests.fixtures.make_repository
TINY_MODEL_NAME = recipe.MODEL_NAME  # the name the product's repository uses
TINY_VERSION = recipe.VERSION

# Markers for runs that take minutes: their tests run only when ``-m`` names them.
OPT_IN = {
    "container": "builds and runs the image; select with -m container",
    "soak": "minutes long; run with -m soak",
    "fuzz": "minutes long; run with -m fuzz",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = config.getoption("markexpr") or ""
    for item in items:
        for marker, reason in OPT_IN.items():
            if item.get_closest_marker(marker) is not None and marker not in chosen:
                item.add_marker(pytest.mark.skip(reason=reason))


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would otherwise land in every failing test's output.
    from export.convert import quiet_tensorflow

    quiet_tensorflow()


@pytest.fixture(scope="session")
def fixture_mnist():
    """The fixture folder's real MNIST subset (3,000 train + 2,000 test images) as ``Mnist``."""
    from training.data import load_mnist

    return load_mnist(FIXTURE_MNIST)


@pytest.fixture(scope="session")
def tiny_repository() -> Path:
    """The committed tiny model repository: ``highway_mnist/1/model.onnx`` with 2 gates.

    Made by ``python -m tests.fixtures.make_repository`` (the exporter, from the model
    ``tiny_keras_model`` trains), so the server-side tests need no TensorFlow;
    ``gate_activity`` is [N, 2]. Read-only: copy it (``shutil.copytree``) before
    adding versions or breaking files.
    """
    return TINY_REPOSITORY


@pytest.fixture(scope="session")
def tiny_keras_model(tmp_path_factory, fixture_mnist) -> Path:
    """Path of a ``model.keras`` (highway fc, depth 3: 2 highway layers) trained 1 epoch now.

    The fixture repository's recipe; its run folder also holds metrics.json,
    history.csv and curves.png. Read-only for tests: copy it before changing anything.
    """
    _quiet_tensorflow()
    from tests.fixtures.make_repository import train_tiny

    return train_tiny(tmp_path_factory.mktemp("tiny_run"), data=fixture_mnist)


@pytest.fixture(scope="session")
def exported_repository(tmp_path_factory, tiny_keras_model) -> Path:
    """``tiny_keras_model`` exported and verified now, as the committed fixture was made.

    For tests of the exporter, which need the ONNX file and its .keras source to
    match. Read-only: copy it before adding versions or breaking files.
    """
    _quiet_tensorflow()
    from tests.fixtures.make_repository import export_tiny

    repository = tmp_path_factory.mktemp("model_repository")
    export_tiny(tiny_keras_model, repository)
    return repository


@pytest.fixture(scope="session")
def flags_repository(tmp_path_factory, tiny_repository) -> Path:
    """``tiny_repository`` with a config.pbtxt that leaves batching unsaid.

    Its ``max_batch_size`` and ``dynamic_batching`` then come from the server's flags
    (as for any model whose config says nothing about them), so a test can set them
    per server. Read-only for tests.
    """
    import shutil

    from google.protobuf import text_format

    from protos.inference import model_config_pb2 as mc

    repository = tmp_path_factory.mktemp("flags_repository") / "models"
    shutil.copytree(tiny_repository, repository)
    path = repository / TINY_MODEL_NAME / "config.pbtxt"
    config = text_format.Parse(path.read_text(), mc.ModelConfig())
    config.ClearField("max_batch_size")
    config.ClearField("dynamic_batching")
    path.write_text(text_format.MessageToString(config))
    return repository
