"""``python -m server.client`` on PNG and IDX files against a real server."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from server import client


def write_idx(path, images: np.ndarray) -> None:
    header = struct.pack(">IIII", 0x803, len(images), 28, 28)
    path.write_bytes(gzip.compress(header + images.tobytes()))


def test_png_and_idx_files_are_classified_like_the_raw_images(shared_server, fixture_mnist,
                                                              tmp_path, capsys):
    images, labels = fixture_mnist.x_test[:20], fixture_mnist.y_test[:20]
    idx = tmp_path / "digits-idx3-ubyte.gz"
    write_idx(idx, images)
    assert client.main(["--address", shared_server.address, str(idx)]) == 0
    idx_digits = [int(line.split(": ")[1].split()[0]) for line in
                  capsys.readouterr().out.splitlines()]
    assert len(idx_digits) == 20

    pngs = []
    for i, image in enumerate(images):
        # A photo-like version: dark ink on light paper, RGB, 5x larger, not square.
        paper = Image.fromarray(255 - image).resize((140, 170), Image.BILINEAR).convert("RGB")
        pngs.append(tmp_path / f"digit{i}.png")
        paper.save(pngs[-1])
    assert client.main(["--address", shared_server.address, *map(str, pngs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    png_digits = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert "confidence" in lines[0]
    raw_accuracy = (np.array(idx_digits) == labels).mean()
    png_accuracy = (np.array(png_digits) == labels).mean()
    assert png_accuracy >= raw_accuracy - 0.2  # preprocessing keeps digits recognisable


def test_gates_flag_prints_each_highway_layer(shared_server, fixture_mnist, tmp_path, capsys):
    path = tmp_path / "seven.png"
    Image.fromarray(fixture_mnist.x_test[0]).save(path)
    assert client.main(["--address", shared_server.address, "--gates", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: ") and "highway1=" in line and "highway2=" in line


@pytest.mark.parametrize("content,fragment", [
    (b"not an image", "not a readable image"),
    (struct.pack(">IIII", 0x803, 5, 28, 28) + bytes(10), "header (5, 28, 28) needs 3936"),
])
def test_unreadable_files_fail_with_one_line(shared_server, tmp_path, capsys, content, fragment):
    path = tmp_path / ("bad-idx3-ubyte" if content[:4] == b"\0\0\x08\x03" else "bad.png")
    path.write_bytes(content)
    assert client.main(["--address", shared_server.address, str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]


def test_unreachable_server_fails_with_one_line(fixture_mnist, tmp_path, capsys):
    path = tmp_path / "d.png"
    Image.fromarray(fixture_mnist.x_test[0]).save(path)
    assert client.main(["--address", "127.0.0.1:1", "--timeout", "2", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "UNAVAILABLE" in err[0]
