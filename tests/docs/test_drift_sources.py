"""The README's drift section: the table and the figures its prose quotes are the ones
``python -m training.experiments drift`` wrote to docs/results/drift.json for the shipped
model, and the reference widths are its gate_reference.json's. No TensorFlow.
"""

from __future__ import annotations

from tests.docs.markdown import RESULTS, folded, table
from tests.docs.markdown import load as _json
from tests.docs.markdown import text as _text
from tests.shipped import FP32_DIR as SHIPPED


def test_drift_table_and_prose_are_drift_json():
    """The README's drift table, cell by cell, and the figures its prose draws from it."""
    from highway_core import drift

    report = _json(RESULTS / "drift.json")
    assert report["model"] == (SHIPPED / "model.onnx").relative_to(SHIPPED.parents[2]).as_posix()
    conditions = {c["condition"]: c for c in report["conditions"]}
    rows = table(_text("README.md"), "| input (windows of 1,000 images) |")
    assert [row[0] for row in rows] == list(conditions)
    for name, median, over, accuracy in rows:
        c = conditions[name]
        assert median == f"{c['score_median']:.3f} ({c['score_min']:.3f}–{c['score_max']:.3f})"
        assert over == f"{c['windows_over_threshold']}/{report['windows']}"
        assert accuracy == (f"{100 * c['accuracy']:.1f} %" if c.get("accuracy") is not None
                            else f"(mean confidence {c['mean_confidence']:.2f})")
    rotated, by_window = conditions["rotated 30°"], report["in_distribution_max_by_window"]
    unshifted = max(conditions[n]["score_max"] for n in (
        "in-distribution (held-out training images)", "test images, unshifted"))
    layers = drift.read(SHIPPED / "gate_reference.json", [f"highway_conv{i}" for i in range(1, 9)])
    widths = [layer.edges[-1] - layer.edges[0] for layer in layers.layers]
    quotes = [
        f"({100 * rotated['accuracy']:.1f} % accuracy): {rotated['score_min']:.2f}–"
        f"{rotated['score_max']:.2f}, {rotated['score_min'] / 0.1:.1f}–"
        f"{rotated['score_max'] / 0.1:.1f} × the threshold",
        f"at or under {unshifted:.3f}, a {0.1 / unshifted:.1f} × margin under 0.1",
        ", ".join(f"{by_window[w]:.3f} at {int(w):,}" for w in ("250", "500", "1000", "2000")),
        f"differ up to {max(widths) / min(widths):.0f}-fold",
    ]
    readme = folded("README.md")
    for quote in quotes:
        assert quote in readme, quote
