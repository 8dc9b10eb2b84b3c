"""verification.png draws every verified image, exact agreement included."""

from __future__ import annotations

import numpy as np
import pytest

from export import plots

TOLERANCE = 1e-5


def _figure(tmp_path, diffs: np.ndarray) -> np.ndarray:
    layers = ["highway_1", "highway_2"]
    gates = np.full((len(diffs), len(layers)), 0.3, dtype=np.float32)
    return plots.verification_figure(tmp_path / plots.FILENAME, diffs, TOLERANCE, layers,
                                     gates, gates, "test")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_counts_every_image_including_exact_agreement(tmp_path, dtype):
    # The ORT outputs are float32: most images agree exactly (0), a few differ a little.
    diffs = np.zeros((1000, 10), dtype=dtype)
    diffs[:100, 3] = 3e-7
    diffs[100:110, 5] = 2e-6
    counts = _figure(tmp_path, diffs)
    assert counts.sum() == 1000
    assert counts[0] == 890  # exact agreement sits in the first bin, at the floor
    assert (tmp_path / plots.FILENAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histogram_counts_differences_beyond_the_tolerance(tmp_path):
    diffs = np.array([[0.0], [1e-9], [5e-6], [3e-4]], dtype=np.float32)
    counts = _figure(tmp_path, diffs)
    # 0 and 1e-9 at the floor; the axis reaches past the worst image, so none is lost.
    assert counts.sum() == 4 and counts[0] == 2
