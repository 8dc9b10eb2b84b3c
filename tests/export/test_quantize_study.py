"""The int8 study's choice rule and CLI refusals (the study itself is a long measurement)."""

from __future__ import annotations

from export import quantize_study
from export.quantize_study import choose


def row(name, validation, *speedups, seven_bit=False):
    return {"recipe": name, "validation_accuracy": validation,
            "settings": {"reduce_range": seven_bit},
            "speedup_vs_fp32": dict(zip(("1", "8", "64"), speedups, strict=True))}


def test_the_fastest_recipe_within_the_accuracy_bar_is_chosen():
    rows = [row("fp32", 0.9966, 1, 1, 1), row("fast-but-lossy", 0.9950, 2, 2, 2),
            row("slow", 0.9968, 1.1, 1.1, 1.1), row("fast", 0.9957, 1.3, 1.4, 1.5)]
    assert choose(rows) == "fast"  # 0.09 point below fp32: inside the 0.1-point bar


def test_without_a_qualifying_recipe_the_most_accurate_is_chosen():
    rows = [row("fp32", 0.9966, 1, 1, 1), row("a", 0.9940, 2, 2, 2), row("b", 0.9950, 1, 1, 1)]
    assert choose(rows) == "b"


def test_seven_bit_recipes_go_first_however_fast_the_others_are():
    # 8-bit weights may saturate on CPUs without VNNI: the same file answers differently there.
    rows = [row("fp32", 0.9966, 1, 1, 1), row("fast-8-bit", 0.9966, 2, 2, 2),
            row("slow-7-bit", 0.9960, 1.1, 1.1, 1.1, seven_bit=True),
            row("lossy-7-bit", 0.9940, 1.5, 1.5, 1.5, seven_bit=True)]
    assert choose(rows) == "slow-7-bit"
    assert choose([r for r in rows if r["recipe"] != "slow-7-bit"]) == "lossy-7-bit"


def test_a_missing_model_is_refused_in_one_line(tmp_path, capsys):
    code = quantize_study.main(["--model", str(tmp_path / "none.onnx")])
    assert code == 1
    assert capsys.readouterr().err == f"quantize_study: error: model not found: " \
        f"{tmp_path / 'none.onnx'}\n"
