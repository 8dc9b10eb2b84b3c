"""Fixtures of the export tests: small trained conv and seed models, exported once."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.convert import quiet_tensorflow
from tests.conftest import FIXTURE_MNIST, TINY_MODEL_NAME, TINY_VERSION


@pytest.fixture(scope="session")
def small_mnist(fixture_mnist):
    """1,200 training images (1,000 fit + 200 select) and 1,000 test images: enough for a
    1-epoch smoke model (the export's verification reads its own 1,000 from the folder)."""
    from training.data import Mnist

    m = fixture_mnist
    return Mnist(m.x_train[:1200], m.y_train[:1200], m.x_test[:1000], m.y_test[:1000],
                 source=m.source)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, small_mnist, tiny_keras_model, exported_repository):
    """``exported(zoo_name) -> (keras_path, onnx_path)``; each model trained and exported once.

    ``fc`` is the shared tiny model; ``conv16`` and ``seed`` are trained here for
    one epoch on ``small_mnist``.
    """
    quiet_tensorflow()
    done: dict[str, tuple[Path, Path]] = {
        "fc": (tiny_keras_model,
               exported_repository / TINY_MODEL_NAME / str(TINY_VERSION) / "model.onnx"),
    }

    def get(name: str) -> tuple[Path, Path]:
        if name not in done:
            from export import export_model
            from training.train import TrainConfig, train

            run = tmp_path_factory.mktemp(f"run_{name}")
            train(TrainConfig(model=name, epochs=1, val_size=200, out=str(run), verbose=0,
                              data_dir=str(FIXTURE_MNIST)), data=small_mnist)
            repo = tmp_path_factory.mktemp(f"repo_{name}")
            onnx_path = export_model(run / "model.keras", repo, data_dir=FIXTURE_MNIST,
                                     log=lambda line: None)
            done[name] = (run / "model.keras", onnx_path)
        return done[name]

    return get
