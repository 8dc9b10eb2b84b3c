"""``python -m server.client`` on many images: ``--stream`` (PredictStream), ``--batch``
(Predict calls under the server's request limit) and ``--labels``, shipped model."""

from __future__ import annotations

import gzip
import re
import struct

import pytest

from server import client
from tests.server.helpers import launch
from tests.server.streaming import shipped_settings

N = 300


@pytest.fixture(scope="module")
def server():
    running = launch(shipped_settings())
    yield running
    running.close()


@pytest.fixture
def idx_files(tmp_path, fixture_mnist):
    images, labels = fixture_mnist.x_test[:N], fixture_mnist.y_test[:N]
    image_file = tmp_path / "digits-idx3-ubyte.gz"
    image_file.write_bytes(gzip.compress(struct.pack(">IIII", 0x803, N, 28, 28)
                                         + images.tobytes()))
    label_file = tmp_path / "digits-labels-idx1-ubyte.gz"
    label_file.write_bytes(gzip.compress(struct.pack(">II", 0x801, N) + labels.tobytes()))
    return image_file, label_file


def _digits(out: str) -> list[int]:
    return [int(line.split(": ")[1].split()[0]) for line in out.splitlines()]


def test_stream_classifies_like_unary_and_reports_accuracy_and_throughput(server, idx_files,
                                                                          capsys):
    images, labels = map(str, idx_files)
    assert client.main(["--address", server.address, "--labels", labels, images]) == 0
    unary = capsys.readouterr()
    assert client.main(["--address", server.address, "--stream", "--labels", labels,
                        images]) == 0
    streamed = capsys.readouterr()

    assert _digits(streamed.out) == _digits(unary.out) and len(_digits(streamed.out)) == N
    assert streamed.out.splitlines()[7].startswith(f"{images}[7]: ")  # in order
    summary = streamed.err.strip()
    found = re.fullmatch(rf"{N} images in [\d.]+ s \([\d,]+ images/s, PredictStream\); "
                         rf"accuracy ([\d.]+) % \((\d+)/{N}\)", summary)
    assert found, summary
    assert float(found.group(1)) >= 98.0
    assert server.metric("highway_requests_total",
                         {"method": "PredictStream", "code": "OK"}) == N


def test_stream_reports_each_failed_image_and_exits_1(server, idx_files, capsys):
    images, _ = idx_files
    assert client.main(["--address", server.address, "--stream", "--model", "nope",
                        str(images)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == N + 1  # one line per image, then the summary
    assert err[0].startswith(f"error: {images}[0]: NOT_FOUND: ") and "nope" in err[0]
    assert err[N - 1].startswith(f"error: {images}[{N - 1}]: NOT_FOUND: ")


def test_labels_that_do_not_match_the_images_are_one_line_exit_2(idx_files, tmp_path, capsys):
    images, _ = idx_files
    short = tmp_path / "short-labels-idx1-ubyte"
    short.write_bytes(struct.pack(">II", 0x801, 2) + bytes([1, 2]))
    assert client.main(["--address", "127.0.0.1:1", "--stream", "--labels", str(short),
                        str(images)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {short}: 2 labels for {N} images"]


def test_a_file_goes_in_calls_of_at_most_batch_images(idx_files, capsys):
    images, labels = map(str, idx_files)
    small = launch(shipped_settings(max_request_images=128))
    try:
        assert client.main(["--address", small.address, "--labels", labels, images]) == 1
        assert capsys.readouterr().err.strip() == (
            f"error: {small.address}: INVALID_ARGUMENT: batch of {N} images exceeds the "
            "per-request limit of 128")
        assert client.main(["--address", small.address, "--batch", "128", "--labels", labels,
                            images]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [line.split(": ")[0] for line in out] == [f"{images}[{i}]" for i in range(N)]
        assert small.metric("highway_requests_total",
                            {"method": "Predict", "code": "OK"}) == 3  # 128 + 128 + 44
    finally:
        small.close()


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_batch_is_refused_in_one_line(idx_files, capsys, value):
    with pytest.raises(SystemExit) as exited:
        client.main(["--batch", value, str(idx_files[0])])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"python -m server.client: error: argument --batch: must be a whole number "
                   f"of at least 1, not {value!r}")
