"""Shared fixtures: the real MNIST subset, a tiny trained model and its model repository.

TensorFlow is imported only inside the fixtures that need it, so test modules
that use none of them (the server's) start without it. Each fixture runs once
per session: one training (~5 s), one export (~5 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURE_MNIST = Path(__file__).parent / "fixtures" / "mnist"
TINY_MODEL_NAME = "highway_mnist"  # the name the product's repository uses
TINY_VERSION = 1


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
def tiny_keras_model(tmp_path_factory, fixture_mnist) -> Path:
    """Path of a ``model.keras`` (highway fc, depth 3: 2 highway layers) trained 1 epoch.

    Its run folder also holds metrics.json, history.csv and curves.png. Read-only
    for tests: copy it before changing anything.
    """
    _quiet_tensorflow()
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = TrainConfig(model="fc", depth=3, epochs=1, val_size=500, out=str(out),
                      data_dir=str(FIXTURE_MNIST), verbose=0,
                      command="highway-train --model fc --depth 3 --epochs 1 (test fixture)")
    train(cfg, data=fixture_mnist)
    return out / "model.keras"


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory, tiny_keras_model) -> Path:
    """A Triton-layout model repository holding ``highway_mnist/1/model.onnx``.

    Exported and verified by ``export.export_model`` from ``tiny_keras_model``
    (2 highway layers, so ``gate_activity`` is [N, 2]). Read-only for tests:
    copy it (``shutil.copytree``) before adding versions or breaking files.
    """
    _quiet_tensorflow()
    from export import export_model

    repository = tmp_path_factory.mktemp("model_repository")
    export_model(tiny_keras_model, repository, name=TINY_MODEL_NAME, version=TINY_VERSION,
                 data_dir=FIXTURE_MNIST, log=lambda line: None)
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
