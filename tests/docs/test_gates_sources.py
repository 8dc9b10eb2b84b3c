"""The figures docs/RESULTS.md's gate analysis (Figure 2) and lesioning (Figure 4) sections
quote in prose, from gates.json, lesion.json and the 50-layer net's run (full50/depth.json).
The lesion table and the other gate figures are checked in test_results_sources.py.
No TensorFlow: JSON and Markdown only.
"""

from __future__ import annotations

import numpy as np

from tests.docs.markdown import RESULTS, folded
from tests.docs.markdown import load as _json


def test_gate_and_lesion_prose_is_their_json():
    gates, lesion = _json(RESULTS / "gates.json"), _json(RESULTS / "lesion.json")
    [net] = _json(RESULTS / "full50" / "depth.json")
    summary, layers = gates["summary"], lesion["layers"]
    moved = np.abs(np.array(gates["gate_bias"]) - gates["gate_bias_init"]).max()
    per_layer = gates["mean_gate_train"]
    early, later = ([r["train_error"] for r in part] for part in (layers[:10], layers[10:]))
    mean_t = f"mean T {summary['mean_gate_train_set']:.3f}"
    quotes = [
        f"the {net['depth']}-layer highway net ({net['params']:,} parameters)",
        f"{net['epochs']} epochs of SGD",
        f"the kept one, lr {net['lr']:g}, reached a training loss of "
        f"{net['best_train_loss']:.4f} and **{100 * net['test_accuracy']:.2f}% test accuracy**",
        f"none moved by more than {moved:.2f}",
        f"({min(per_layer):.3f}–{max(per_layer):.3f} per layer)",
        f"({mean_t} against {summary['mean_gate_example']:.3f})",
        f"({mean_t}: each layer transforms about {100 * summary['mean_gate_train_set']:.0f}% "
        "of its signal",
        f"(mean {100 * np.mean(early):.2f}% against {100 * lesion['baseline_train_error']:.2f}%), "
        f"against a mean of {100 * np.mean(later):.2f}% for layers 11–{len(layers)}",
        f"nearly shut ({mean_t})",
        f"better trained ({100 * gates['test_accuracy']:.2f}%, training loss "
        f"{net['best_train_loss']:.4f})",
        f"carries far more ({mean_t} against",
        f"Each of the {len(layers)} highway layers",
        "only a few gates open ({} of {:,} for test image 0)".format(
            sum(t > 0.5 for row in gates["example"]["gate"] for t in row),
            sum(len(row) for row in gates["example"]["gate"])),
    ]
    results = folded("docs/RESULTS.md")
    missing = [quote for quote in quotes if quote not in results]
    assert not missing, missing
