"""The drift experiment in quick mode on the fixture (no TensorFlow), and its shifts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import drift, experiments

FIXTURE = "tests/fixtures/mnist"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("drift")
    assert experiments.main(["drift", "--quick", "--data-dir", FIXTURE, "--out", str(out)]) == 0
    assert (out / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((out / "drift.json").read_text())


def test_quick_run_scores_every_condition_with_accuracy_or_confidence(report):
    names = [row["condition"] for row in report["conditions"]]
    assert names[:2] == ["in-distribution (held-out training images)", "test images, unshifted"]
    assert names[2:-2] == list(drift.SHIFTS)
    assert names[-1] == "only the digit 1 (label shift)"
    for row in report["conditions"]:
        assert len(row["scores"]) == report["windows"] == 3
        assert len(row["layer_psi_median"]) == len(report["layers"]) == 8
        assert 0 <= row["mean_confidence"] <= 1
        assert ("accuracy" in row) == (row["condition"] != "random strokes")


def test_inverted_images_score_far_above_unshifted_ones(report):
    rows = {row["condition"]: row for row in report["conditions"]}
    assert rows["inverted"]["score_min"] > 3 * rows["test images, unshifted"]["score_max"]
    assert rows["inverted"]["accuracy"] < 0.5 < rows["test images, unshifted"]["accuracy"]


def test_shifts_keep_shape_and_dtype_and_change_the_images():
    rng = np.random.default_rng(0)
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    images[:, 10:18, 12:16] = 255
    for name, transform in drift.SHIFTS.items():
        out = drift.strokes(4, rng) if transform is None else transform(images, rng)
        assert out.shape == images.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, images), name
    shifted = drift._shift(6)(images, rng)
    assert shifted.sum() == images.sum()  # moved inside the frame, nothing wrapped around


def test_bad_arguments_exit_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        experiments.main(["drift", "--window", "5"])
    assert exit_.value.code == 2
    assert "--window" in capsys.readouterr().err
