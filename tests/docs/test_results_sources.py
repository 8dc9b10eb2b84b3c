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

from tests.docs.markdown import PERF, RESULTS, ROOT, table
from tests.docs.markdown import load as _json
from tests.docs.markdown import text as _text

SHIPPED = ROOT / "models" / "highway_mnist" / "1"


def _accuracy(value: float | None) -> str:
    return "diverged" if value is None else f"{100 * value:.2f}%"


def test_best_run_per_depth_table_is_depth_json():
    rows = table(_text("docs/RESULTS.md"), "| kind | depth | params | best train loss |")
    expected = [[r["kind"], str(r["depth"]), f"{r['params']:,}", f"{r['best_train_loss']:.4f}",
                 f"{r['final_train_loss']:.4f}", _accuracy(r["test_accuracy"]), f"{r['lr']:g}"]
                for r in _json(RESULTS / "depth.json")]
    assert rows == expected


def test_grid_table_is_depth_runs_json():
    runs = _json(RESULTS / "depth_runs.json")["runs"]
    rows = table(_text("docs/RESULTS.md"), "| kind | depth | lr 0.01 | lr 0.03 | lr 0.1 |")
    assert len(rows) == len({(r["kind"], r["depth"]) for r in runs})
    for kind, depth, *cells in rows:
        for lr, cell in zip((0.01, 0.03, 0.1), cells, strict=True):
            seeds = [r for r in runs if (r["kind"], r["depth"], r["lr"]) == (kind, int(depth), lr)]
            text = f"{min(r['best_train_loss'] for r in seeds):.4f}"
            diverged = sum(r["diverged"] for r in seeds)
            if diverged:
                text += f" ({diverged} of {len(seeds)} diverged)"
            assert cell == text, (kind, depth, lr)


def test_gate_bias_table_is_its_two_grids():
    grids = {"rule": RESULTS, "−5": RESULTS / "gate_bias_5"}
    rows = table(_text("docs/RESULTS.md"), "| kind | depth | gate bias |")
    assert len(rows) == 6
    for kind, depth, bias, loss, accuracy, lr, diverged in rows:
        folder = grids["−5" if bias == "−5" else "rule"]
        best = next(r for r in _json(folder / "depth.json")
                    if (r["kind"], r["depth"]) == (kind, int(depth)))
        runs = [r for r in _json(folder / "depth_runs.json")["runs"]
                if (r["kind"], r["depth"]) == (kind, int(depth))]
        assert [loss, accuracy, lr] == [f"{best['best_train_loss']:.4f}",
                                        _accuracy(best["test_accuracy"]), f"{best['lr']:g}"]
        assert diverged == f"{sum(r['diverged'] for r in runs)} of {len(runs)}"


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
        ("README.md", f"**{100 * acc:.2f} % MNIST test accuracy in one run**"),
        ("README.md", f"{metrics['train_seconds']:,.0f} s on two shared CPU cores; best epoch "
                      f"{metrics['best_epoch']} by validation accuracy "
                      f"{100 * metrics['best_val_accuracy']:.2f} %"),
        ("README.md", f"{verification['images']:,} test images, max |Δp| {dp:.1e}".replace(
            "e-0", "e-")),
        ("README.md", f"max |Δgate| {verification['max_abs_diff_gate_activity']:.1e}".replace(
            "e-0", "e-")),
        ("docs/RESULTS.md", f"**{100 * acc:.2f}%** (one run, seed {metrics['config']['seed']}"),
        ("docs/RESULTS.md", f"{100 * acc:.2f}% ({errors} errors in {metrics['test_images']:,})"),
        ("docs/RESULTS.md", f"test loss {metrics['test_loss']:.4f}"),
        ("docs/RESULTS.md", f"(epoch {metrics['best_epoch']}: "
                            f"{100 * metrics['best_val_accuracy']:.2f}%)"),
        ("docs/RESULTS.md", f"|Δp| {mantissa}·10{str(int(exponent)).translate(superscript)}"),
        ("docs/RESULTS.md", f"{min(seconds):.0f}–{max(seconds):.0f} s per epoch"),
        ("docs/RESULTS.md", f"Wall time: {metrics['train_seconds']:,.0f} s"),
    ]


def _experiment_figures() -> list[tuple[str, str]]:
    gates = _json(RESULTS / "gates.json")
    summary = gates["summary"]
    strong = _json(RESULTS / "gate_bias_5" / "depth.json")
    strong_runs = _json(RESULTS / "gate_bias_5" / "depth_runs.json")
    grid = _json(RESULTS / "depth_runs.json")
    rows = {(r["kind"], r["depth"]): r for r in _json(RESULTS / "depth.json")}
    h100 = next(r for r in strong if r["depth"] == 100)
    gap = rows[("plain", 100)]["best_train_loss"] / h100["best_train_loss"]
    speed = [run for s in _json(RESULTS / "train_speed.json")["setups"].values()
             for run in [s["runs"]]]
    spread = max(max(r) / min(r) for r in speed)
    return [
        ("docs/RESULTS.md", f"**{100 * gates['test_accuracy']:.2f}% test accuracy**"),
        ("docs/RESULTS.md", f"mean {summary['mean_gate_bias']:.3f}".replace("-", "−")),
        ("docs/RESULTS.md", f"{100 * summary['share_of_biases_below_init']:.0f}% of them below"),
        ("docs/RESULTS.md", f"{summary['mean_gate_test_set']:.3f} ("),
        ("docs/RESULTS.md", f"{100 * summary['share_open_mean']:.1f}% of the units"),
        ("docs/RESULTS.md", f"mean T {summary['mean_gate_example']:.3f}; "
                            f"{100 * summary['share_open_example']:.1f}% of the gates"),
        ("docs/RESULTS.md", f"{strong_runs['wall_seconds']:.0f} s;"),
        ("docs/RESULTS.md", f"({grid['runs_per_config'][0] * 8} runs; "
                            f"{grid['wall_seconds']:.0f} s"),
        ("docs/RESULTS.md", f"is {gap:.0f}× below plain-100's"),
        ("docs/RESULTS.md", f"by up to {spread:.2f}×"),
        *_rerun_figures(),
        ("docs/RESULTS.md", f"({gates['seconds']} s and "
                            f"{_json(RESULTS / 'lesion.json')['seconds']} s here"),
        ("README.md", f"training loss {h100['best_train_loss']:.3f}, "
                      f"{100 * h100['test_accuracy']:.1f}% test accuracy"),
        ("README.md", f"plain-100 does not train: {gap:.0f}×"),
    ]


def _rerun_figures() -> list[tuple[str, str]]:
    """The 50-layer re-runs quoted in the gates section."""
    runs = {(r["seed"], r["lr"]): r for seed in (0, 1)
            for r in _json(RESULTS / "full50_rerun" / f"seed{seed}" / "depth_runs.json")["runs"]}
    assert [runs[(0, 0.01)]["diverged"], runs[(0, 0.03)]["diverged"],
            runs[(1, 0.01)]["diverged"], runs[(1, 0.03)]["diverged"]] == [True, True, True, False]
    trained = runs[(1, 0.03)]
    return [
        ("docs/RESULTS.md", f"first-epoch loss of {runs[(0, 0.01)]['train_loss'][0]:.4f}"),
        ("docs/RESULTS.md", f"lr 0.03 trained to a loss of {trained['final_train_loss']:.4f} "
                            f"and {100 * trained['test_accuracy']:.2f}% test accuracy"),
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
    assert figure in " ".join(_text(doc).split()), f"{doc} does not quote {figure!r}"


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
    assert quoted in " ".join(_text("README.md").split())
