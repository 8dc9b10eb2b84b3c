"""MNIST loading: the real fixture files, gzip or raw, splits, and what is refused."""

import gzip
import struct

import numpy as np
import pytest

from training.data import (
    IMAGE_MAGIC,
    LABEL_MAGIC,
    MnistDataError,
    load_mnist,
    load_split,
)

FIXTURE = "tests/fixtures/mnist"


def _idx(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_fixture_loads_as_uint8_with_matching_labels():
    data = load_mnist(FIXTURE)
    assert data.x_train.shape == (3000, 28, 28) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (2000, 28, 28) and data.y_test.dtype == np.uint8
    assert len(data.y_train) == 3000
    assert set(np.unique(data.y_test)) == set(range(10))
    # Real digits: mostly black background, bright strokes.
    assert 20 < data.x_test.mean() < 50 and data.x_test.max() == 255


def test_raw_and_gzip_files_read_the_same(tmp_path):
    images, labels = load_split(FIXTURE, "test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(images[:10], IMAGE_MAGIC))
    labels_gz = gzip.compress(_idx(labels[:10], LABEL_MAGIC))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(labels_gz)
    raw_images, raw_labels = load_split(tmp_path, "test")
    np.testing.assert_array_equal(raw_images, images[:10])
    np.testing.assert_array_equal(raw_labels, labels[:10])


def test_validation_split_holds_out_the_end_of_the_training_set():
    data = load_mnist(FIXTURE)
    (x_fit, _), (x_val, y_val) = data.split_validation(500)
    assert len(x_fit) == 2500 and len(x_val) == 500
    np.testing.assert_array_equal(y_val, data.y_train[-500:])
    with pytest.raises(ValueError, match="Received: size=3000"):
        data.split_validation(3000)


def test_image_and_label_counts_must_agree(tmp_path):
    images = _idx(np.zeros((4, 28, 28), np.uint8), IMAGE_MAGIC)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(images)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros(3, np.uint8), LABEL_MAGIC))
    with pytest.raises(MnistDataError, match="4 images but t10k-labels-idx1-ubyte has 3 labels"):
        load_split(tmp_path, "test")


def test_missing_directory_and_missing_file_are_named(tmp_path):
    with pytest.raises(MnistDataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(MnistDataError, match="no train images file"):
        load_mnist(tmp_path)


def test_environment_variable_points_at_the_data(monkeypatch):
    monkeypatch.setenv("HIGHWAY_DATA_DIR", FIXTURE)
    assert load_mnist().source == FIXTURE


def test_downloader_failure_is_one_line(monkeypatch):
    # Without a directory the loader falls back to Keras' downloader; make it fail
    # the way it does offline, and check the user gets one actionable line.
    keras = pytest.importorskip("keras")
    monkeypatch.delenv("HIGHWAY_DATA_DIR", raising=False)

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...\nsecond line")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(MnistDataError, match="pass --data-dir or set HIGHWAY_DATA_DIR") as err:
        load_mnist()
    assert "\n" not in str(err.value)
