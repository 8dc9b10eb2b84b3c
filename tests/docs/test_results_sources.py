"""Every figure README.md and docs/RESULTS.md quote is the one its committed file holds.

The tables are parsed and compared cell by cell with the JSON they come from; the
figures quoted in the text are formatted from their files and looked up in the
text. A new result that changes a file fails here until the prose says so too.
No TensorFlow: JSON, CSV and Markdown only.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest

from tests.docs.markdown import PERF, RESULTS, folded, table
from tests.docs.markdown import load as _json
from tests.docs.markdown import text as _text
from tests.shipped import FP32_DIR as SHIPPED


def _accuracy(value: float | None) -> str:
    return "diverged" if value is None else f"{100 * value:.2f}%"


def test_depth_tables_are_depth_runs_json():
    """RESULTS.md holds each depth table exactly as training.depth_tables makes it from the
    committed runs (no TensorFlow there), and depth.json is the best run per configuration."""
    from training import depth_tables

    runs = _json(RESULTS / "depth_runs.json")["runs"]
    rows = _json(RESULTS / "depth.json")
    best = {}
    for r in runs:
        key = (r["kind"], r["depth"])
        if key not in best or depth_tables.rank(r) < depth_tables.rank(best[key]):
            best[key] = r
    assert [(r["kind"], r["depth"], r["lr"], r["seed"], r["gate_bias"]) for r in rows] == [
        (r["kind"], r["depth"], r["lr"], r["seed"], r["gate_bias"]) for r in best.values()]
    text = _text("docs/RESULTS.md")
    for made in (depth_tables.depth_summary(rows), depth_tables.grid_table(runs),
                 depth_tables.bias_table(runs), depth_tables.ratio_table(runs)):
        assert made in text, made.splitlines()[0]


def test_training_speed_table_is_train_speed_json():
    setups = _json(RESULTS / "train_speed.json")["setups"]
    rows = table(_text("docs/RESULTS.md"), "| setup | images/s |")
    assert [row[1:] for row in rows] == [
        [f"{s['images_per_second']:,.0f}", f"{s['ratio_to_keras_defaults']:.2f}×"]
        for s in setups.values()]


def test_lesion_table_is_lesion_json():
    report = _json(RESULTS / "lesion.json")
    layers = report["layers"]

    def cell(group: list[dict], key: str) -> str:
        worst = max(group, key=lambda r: r[key])
        mean = sum(r[key] for r in group) / len(group)
        return f"{100 * mean:.2f}%; {100 * worst[key]:.2f}% (layer {worst['index']})"

    rows = table(_text("docs/RESULTS.md"), "| lesioned layers |")
    assert rows[0][1:] == [f"{100 * report['baseline_test_error']:.2f}%",
                           f"{100 * report['baseline_train_error']:.2f}%"]
    assert rows[1][1:] == [cell(layers[:10], "test_error"), cell(layers[:10], "train_error")]
    assert rows[2][1:] == [cell(layers[10:], "test_error"), cell(layers[10:], "train_error")]


def test_gate_analysis_and_lesion_name_the_committed_network():
    digest = hashlib.sha256((RESULTS / "highway_fc50_full.keras").read_bytes()).hexdigest()
    for name in ("gates.json", "lesion.json"):
        report = _json(RESULTS / name)
        assert (report["model"], report["model_sha256"]) == ("highway_fc50_full.keras", digest)


def _depth_runs_files() -> list[Path]:
    return sorted(RESULTS.rglob("depth_runs.json"))


@pytest.mark.parametrize("path", _depth_runs_files(), ids=lambda p: p.parent.name)
def test_diverged_runs_carry_no_accuracy(path):
    runs = _json(path)["runs"]
    assert runs
    for r in runs:
        assert (r["test_accuracy"] is None) == r["diverged"], (r["kind"], r["depth"], r["lr"])


def _shipped_figures() -> list[tuple[str, str]]:
    metrics = _json(SHIPPED / "metrics.json")
    verification = _json(SHIPPED / "verification.json")
    with (SHIPPED / "history.csv").open() as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    acc = metrics["test_accuracy"]
    errors = round((1 - acc) * metrics["test_images"])
    dp = verification["max_abs_diff_probabilities"]
    mantissa, exponent = f"{dp:.1e}".split("e")
    superscript = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return [
        ("README.md", f"{metrics['params']:,} parameters"),
        ("README.md", f"**{100 * acc:.2f} % MNIST test accuracy** (seed "
                      f"{metrics['config']['seed']},"),
        ("README.md", f"{metrics['train_seconds']:,.0f} s on two shared CPU cores; best epoch "
                      f"{metrics['best_epoch']} by validation accuracy "
                      f"{100 * metrics['best_val_accuracy']:.2f} %"),
        ("README.md", f"{verification['images']:,} test images, max |Δp| {dp:.1e}".replace(
            "e-0", "e-")),
        ("README.md", f"max |Δgate| {verification['max_abs_diff_gate_activity']:.1e}".replace(
            "e-0", "e-")),
        ("docs/RESULTS.md", f"**{100 * acc:.2f}%** (seed {metrics['config']['seed']}, the run "
                            "with the best validation accuracy of three)"),
        ("docs/RESULTS.md", f"{100 * acc:.2f}% ({errors} errors in {metrics['test_images']:,})"),
        ("docs/RESULTS.md", f"test loss {metrics['test_loss']:.4f}"),
        ("docs/RESULTS.md", f"(epoch {metrics['best_epoch']}: "
                            f"{100 * metrics['best_val_accuracy']:.2f}%)"),
        ("docs/RESULTS.md", f"|Δp| {mantissa}·10{str(int(exponent)).translate(superscript)}"),
        ("docs/RESULTS.md", f"{min(seconds):.0f}–{max(seconds):.0f} s per epoch"),
        ("docs/RESULTS.md", f"Wall time: {metrics['train_seconds']:,.0f} s"),
    ]


def _experiment_figures() -> list[tuple[str, str]]:
    from training import depth_tables

    gates = _json(RESULTS / "gates.json")
    summary = gates["summary"]
    lesion = _json(RESULTS / "lesion.json")
    layers = lesion["layers"]
    base_test, base_train = lesion["baseline_test_error"], lesion["baseline_train_error"]
    example = [t for row in gates["example"]["gate"] for t in row]
    worst_later = 100 * (max(r["test_error"] for r in layers[10:]) - base_test)
    [kept] = _json(RESULTS / "full50" / "depth.json")
    full50_seconds = [r["seconds"] for r in _json(RESULTS / "full50" / "depth_runs.json")["runs"]]
    grid = _json(RESULTS / "depth_runs.json")
    ratios = {r["depth"]: r for r in depth_tables.ratio_rows(grid["runs"])}
    h100, p100 = ratios[100]["highway"], ratios[100]["plain"]
    speed = [run for s in _json(RESULTS / "train_speed.json")["setups"].values()
             for run in [s["runs"]]]
    spread = max(max(r) / min(r) for r in speed)
    return [
        ("docs/RESULTS.md", f"training loss of {kept['best_train_loss']:.4f} and "
                            f"**{100 * kept['test_accuracy']:.2f}% test accuracy**"),
        ("docs/RESULTS.md", f"{100 * gates['test_accuracy']:.2f}%, training loss"),
        ("docs/RESULTS.md", f"mean {summary['mean_gate_bias']:.3f}".replace("-", "−")),
        ("docs/RESULTS.md", f"{100 * summary['share_of_biases_below_init']:.0f}% of them below"),
        ("docs/RESULTS.md", f"{summary['mean_gate_train_set']:.4f} over "
                            f"{gates['train_images']:,} training images, "
                            f"{summary['mean_gate_test_set']:.4f} over the test set"),
        ("docs/RESULTS.md", f"{100 * summary['share_open_mean_train']:.1f}% of the units"),
        ("docs/RESULTS.md", f"mean T {summary['mean_gate_example']:.4f}; "
                            f"{sum(t > 0.5 for t in example)} of its {len(example):,} gates"),
        ("docs/RESULTS.md", f"{sum(r['test_error'] - base_test <= 0.001 for r in layers)} of "
                            f"the {len(layers)} lesions stay within 0.1 points"),
        ("docs/RESULTS.md", f"{sum(r['train_error'] > 2 * base_train for r in layers[:10])} of "
                            "the first 10 lesions more than double the error"),
        ("docs/RESULTS.md", f"within {worst_later:.2f} points of the baseline"),
        ("docs/RESULTS.md", f"by up to {spread:.2f}×"),
        ("docs/RESULTS.md", "(XLA off: {:.0f} and {:.0f} images/s".format(
            *_json(RESULTS / "train_speed.json")["setups"]["no-xla"]["runs"])),
        ("docs/RESULTS.md", f"`lesion`: {gates['seconds']} s and {lesion['seconds']} s here"),
        ("docs/RESULTS.md", f"(15 epochs: {min(full50_seconds):.0f}–{max(full50_seconds):.0f} "
                            "s per run;"),
        ("README.md", f"highway-100: training loss {h100['best_train_loss']:.3f}, "
                      f"{100 * h100['test_accuracy']:.1f}% test accuracy"),
        ("README.md", f"best plain-100: {p100['best_train_loss']:.3f}, "
                      f"{ratios[100]['ratio']:.0f}× highway-100's loss"),
    ]


def _perf_figures() -> list[tuple[str, str]]:
    soak = _json(PERF / "soak.json")
    fuzz = (PERF / "fuzz.log").read_text()
    counts = re.search(r"^fuzz: (\d+) requests in (\d+) s: (.*)$", fuzz, re.M)
    codes = {name: int(n) for name, n in re.findall(r"'(\w+)': (\d+)", counts.group(3))}
    return [
        ("README.md", f"{soak['requests']:,} requests"),
        ("README.md", f"{soak['rss_first_leg_mb']:.1f} MB"),
        ("README.md", f"{soak['rss_start_mb']:.1f} MB"),
        ("README.md", f"{soak['rss_end_mb']:.1f} MB"),
        ("README.md", f"**+{soak['growth_mb']:.1f} MB** warm, "
                      f"**+{soak['rss_end_mb'] - soak['rss_first_leg_mb']:.1f} MB** from the "
                      "first reading"),
        ("README.md", f"{min(soak['rss_per_leg_mb'][1:]):.1f}–{max(soak['rss_per_leg_mb']):.1f}"
                      " MB"),
        ("README.md", f"{int(counts.group(1)):,} generated requests"),
        *[("README.md", f"{n:,} {name}") for name, n in codes.items()],
    ]


@pytest.mark.parametrize("doc, figure",
                         _shipped_figures() + _experiment_figures() + _perf_figures(),
                         ids=lambda v: v if len(v) < 40 else v[:40])
def test_quoted_figure_is_in_its_file(doc, figure):
    assert figure in folded(doc), f"{doc} does not quote {figure!r}"


def test_verification_figure_draws_every_image():
    report = _json(SHIPPED / "verification.json")
    assert report["passed"] and report["figure_images"] == report["images"] == 10_000


def test_performance_table_is_bench_json():
    bench = _json(PERF / "bench.json")
    real = {(r["api"], r["images"], r["concurrency"]): r for r in bench["runs"]
            if r["server"] == "real"}
    rows = table(_text("README.md"), "| load | server ÷ best raw ORT |")
    assert len(rows) == 3
    for row in rows:
        images, concurrency = re.match(r"(\d+) images?, c=(\d+)", row[0]).groups()
        pair = [real[(api, int(images), int(concurrency))]
                for api in ("ModelInfer", "Predict")]
        assert row[1] == " / ".join(f"{r['vs_best_raw']:.2f}" for r in pair)
        assert row[2] == " / ".join(f"{r['vs_raw_same']:.2f}" for r in pair)
        assert row[6] == " / ".join(f"{r['images_per_s']:,.0f}" for r in pair)
        p50 = " / ".join(f"{r['p50_ms']:.3g}" if r["p50_ms"] < 10 else f"{r['p50_ms']:.1f}"
                         for r in pair)
        assert row[7].startswith(p50), (row[7], p50)
    raw = bench["raw"]
    quoted = (f"{raw['1']['median_images_per_s']:,.0f} img/s at batch 1, "
              f"{raw['8']['median_images_per_s']:,.0f} at batch 8, "
              f"{raw['64']['median_images_per_s']:,.0f} at batch 64")
    assert quoted in folded("README.md")

