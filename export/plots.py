"""``verification.png``: the parity figures, for people who would rather look than read."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILENAME = "verification.png"


def verification_figure(path: Path, diffs: np.ndarray, tolerance: float,
                        layers: Sequence[str], gate_keras: np.ndarray,
                        gate_onnx: np.ndarray, title: str) -> np.ndarray:
    """Left: |p_keras − p_onnx| per image against the tolerance. Right: mean T per layer.

    Returns the histogram's counts per bin: what the left panel draws, one count per
    image (``counts.sum() == len(diffs)``).
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: export runs on servers and in CI
    # Font fallbacks are matplotlib's business, not the user's: its font manager warns on
    # stderr (e.g. "findfont: Font family ['STIXGeneral'] not found") where the export's
    # CLIs promise one line.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    fig, (ax_diff, ax_gate) = plt.subplots(1, 2, figsize=(11, 4))
    floor = tolerance / 1e4  # log axis: exact agreement (0) is drawn at the floor
    # In float64: np.maximum(float32, 1e-9) stays float32 (9.99999972e-10), which falls
    # below the first bin edge, and every image that agrees exactly would not be drawn.
    worst = np.maximum(diffs.max(axis=1).astype(np.float64), floor)
    bins = np.logspace(np.log10(floor), np.log10(max(worst.max(), tolerance) * 2), 40)
    bins[0], bins[-1] = floor, max(worst.max(), tolerance) * 2  # exact edges, not 10**log10
    counts, _, _ = ax_diff.hist(worst, bins=bins, color="tab:blue")
    ax_diff.axvline(tolerance, color="tab:red", linestyle="--", label=f"tolerance {tolerance:g}")
    ax_diff.set(xscale="log", ylabel="images", title=f"probabilities, {len(worst):,} images",
                xlabel=f"max |p_keras − p_onnx| per image (0 drawn at {floor:g})")
    ax_diff.legend()
    x = np.arange(len(layers))
    ax_gate.bar(x - 0.2, gate_keras.mean(axis=0), 0.4, label="Keras")
    ax_gate.bar(x + 0.2, gate_onnx.mean(axis=0), 0.4, label="ONNX (HighwayGate)")
    ax_gate.set_xticks(x, layers, rotation=30, ha="right", fontsize=8)
    ax_gate.set(ylabel="mean transform gate T", title="gate activity per highway layer",
                ylim=(0, 1))
    ax_gate.legend()
    for ax in (ax_diff, ax_gate):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return np.asarray(counts, dtype=np.int64)
