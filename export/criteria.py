"""What "computes what Keras computes" means for a float and for an int8 model.

fp32: the same numbers up to float rounding, so every probability and gate mean
within 1e-5 and the same top-1 for every image. int8: the numbers move (weights
and activations are rounded to 256 levels), so the contract is the one a user
cares about: accuracy at most 0.1 point below Keras on the verification images,
top-1 agreement reported, and each image's per-layer gate means within
``INT8_GATE_TOLERANCE`` of Keras' (the gate statistics stay trustworthy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Criteria:
    """Bounds a verification report must meet; None: reported, not bounded."""

    name: str
    max_abs_diff_probabilities: float | None
    max_abs_diff_gate_activity: float
    every_top1_equal: bool
    max_accuracy_drop: float | None  # fraction of images, e.g. 0.001 = 0.1 point

    def as_report(self) -> dict:
        return asdict(self)

    def plot_tolerance(self) -> float:
        """The line drawn on the probability-difference histogram."""
        return self.max_abs_diff_probabilities or self.max_abs_diff_gate_activity

    def failures(self, report: dict) -> list[str]:
        """Each unmet bound as a short phrase (empty: passed)."""
        found = []
        dp, dg = report["max_abs_diff_probabilities"], report["max_abs_diff_gate_activity"]
        if self.max_abs_diff_probabilities is not None and dp > self.max_abs_diff_probabilities:
            found.append(f"probabilities differ by {dp:.3g}")
        if self.every_top1_equal and report["top1_mismatches"]:
            found.append(f"top-1 differs on {report['top1_mismatches']} of "
                         f"{report['images']} images")
        if dg > self.max_abs_diff_gate_activity:
            found.append(f"gate_activity differs by {dg:.3g} "
                         f"(bound {self.max_abs_diff_gate_activity:g})")
        if self.max_accuracy_drop is not None:
            # in images, so that 0.1 point of 1,000 images means exactly one image
            images = report["images"]
            lost = round((report["accuracy_keras"] - report["accuracy_onnx"]) * images)
            allowed = math.floor(self.max_accuracy_drop * images + 1e-9)
            if lost > allowed:
                found.append(f"accuracy {report['accuracy_onnx']:.2%} is {lost} images below "
                             f"Keras' {report['accuracy_keras']:.2%} (at most {allowed})")
        return found


FP32 = Criteria("fp32", 1e-5, 1e-5, True, None)
INT8_GATE_TOLERANCE = 0.05
INT8 = Criteria("int8", None, INT8_GATE_TOLERANCE, False, 0.001)


def for_model(quantized: bool) -> Criteria:
    return INT8 if quantized else FP32
