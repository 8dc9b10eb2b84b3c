"""The IDX reader and the repository's version rule: TensorFlow-free, shared by every part."""

import gzip
import struct

import numpy as np
import pytest

from highway_core.facts import version_folders
from highway_core.idx import IMAGE_MAGIC, LABEL_MAGIC, IdxError, read_idx
from server import client


def _idx(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda img: _idx(img, IMAGE_MAGIC)[:-7], "truncated"),
        (lambda img: _idx(img, IMAGE_MAGIC) + b"\0", "trailing bytes"),
        (lambda img: _idx(img, 0x00000804), "bad magic number 0x00000804"),
        (lambda img: _idx(img.reshape(5, 28 * 28 // 4, 4), IMAGE_MAGIC), "expected 28x28"),
        (lambda img: b"\0\0\x08", "truncated header"),
    ],
    ids=["truncated", "trailing", "wrong-magic", "wrong-size", "no-header"],
)
def test_broken_image_file_gives_one_line_error_naming_the_file(tmp_path, content, message):
    images = np.zeros((5, 28, 28), np.uint8)
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(content(images))
    with pytest.raises(IdxError, match=message) as err:
        read_idx(path, IMAGE_MAGIC)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_gzip_is_reported_with_its_name(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx(np.zeros((3, 28, 28), np.uint8), IMAGE_MAGIC))[:-12])
    with pytest.raises(IdxError, match="cannot read") as err:
        read_idx(path, IMAGE_MAGIC)
    assert str(path) in str(err.value)


def test_labels_out_of_range_are_refused(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(_idx(np.array([1, 2, 10], np.uint8), LABEL_MAGIC))
    with pytest.raises(IdxError, match="label 10 outside 0..9"):
        read_idx(path, LABEL_MAGIC)


def test_gzip_is_recognised_by_content_not_by_name(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = tmp_path / "digits-idx3-ubyte"  # gzip data without the .gz ending
    path.write_bytes(gzip.compress(_idx(images, IMAGE_MAGIC)))
    np.testing.assert_array_equal(read_idx(path), images)


def test_the_client_reads_idx_files_with_the_same_reader(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(_idx(np.zeros((3, 28, 28), np.uint8), IMAGE_MAGIC)[:-1])
    with pytest.raises(IdxError, match="truncated"):
        client.load(path)


def test_version_folders_are_positive_integers_only(tmp_path):
    for name in ("1", "3", "10", "0", "2.tmp", "latest", "-1"):
        (tmp_path / name).mkdir()
    (tmp_path / "4").write_text("a file, not a version")
    assert version_folders(tmp_path) == [1, 3, 10]
