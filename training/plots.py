"""Every PNG of training and the paper's experiments (matplotlib, headless): training
curves, Table 1 over seeds, depth curves (Figure 1), gate maps (Figure 2), lesions
(Figure 4) and gate drift."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
# Font fallbacks are matplotlib's business: its font manager would fill the run's log.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

COLOURS = {"plain": "tab:red", "highway": "tab:blue"}


def training_curves(rows: list[dict[str, float]], path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    for key, label in (("accuracy", "training"), ("val_accuracy", "validation")):
        ax_acc.plot(epochs, [100 * r[key] for r in rows], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def depth_curves(curves: dict[tuple[str, int], list[float | None]], rows: list[dict],
                 path: Path, title: str = "") -> None:
    """Paper Figure 1: one panel per depth, training loss per epoch, plain vs highway, log y."""
    depths = sorted({depth for _, depth in curves})
    fig, axes = plt.subplots(1, len(depths), figsize=(3.6 * len(depths), 3.6), sharey=True,
                             squeeze=False)
    by_key = {(r["kind"], r["depth"]): r for r in rows}
    for ax, depth in zip(axes[0], depths, strict=True):
        for kind in ("plain", "highway"):
            losses = curves.get((kind, depth))
            if not losses:
                continue
            epochs = np.arange(1, len(losses) + 1)
            values = np.array([np.nan if v is None else v for v in losses], dtype=float)
            row = by_key[(kind, depth)]
            diverged = ", diverged" if row["diverged"] else ""
            bias = "" if row.get("gate_bias") is None else f", gate bias {row['gate_bias']:g}"
            ax.plot(epochs, values, marker=".", color=COLOURS[kind],
                    label=f"{kind} (lr {row['lr']:g}{bias}{diverged})")
        ax.set(title=f"{depth} layers", xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training cross-entropy (epoch mean)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _heatmap(ax, values: np.ndarray, title: str, cmap: str, vmin=None, vmax=None) -> None:
    rows, cols = values.shape
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                      interpolation="nearest", extent=(0.5, cols + 0.5, rows + 0.5, 0.5))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel="unit (block)", ylabel="highway layer")
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def gates(report: dict, path: Path) -> None:
    """Paper Figure 2: gate biases, mean gate output, one example's gates and outputs."""
    bias = np.array(report["gate_bias"])
    mean_t = np.array(report["mean_gate_units"])
    example = report["example"]
    fig, axes = plt.subplots(1, 5, figsize=(22, 4.6))
    # Centred on the initial value: what training changed, which is small here.
    init = report["gate_bias_init"]
    spread = max(float(np.abs(bias - init).max()), 1e-3)
    _heatmap(axes[0], bias, f"transform gate biases $b_T$\n(centred on the initial {init:g})",
             "RdBu_r", vmin=init - spread, vmax=init + spread)
    # The paper averages over training examples; reports made before that have the test set.
    if report.get("train_images"):
        shown, where = np.array(report["mean_gate_units_train"]), "training images"
    else:
        shown, where = mean_t, "test set"
    _heatmap(axes[1], shown, f"mean transform gate output\n({where})", "viridis", 0, 1)
    _heatmap(axes[2], np.array(example["gate"]),
             f"transform gate outputs\n(one test image, a {example['label']})", "viridis", 0, 1)
    outputs = np.array(example["output"])
    _heatmap(axes[3], outputs, "block outputs\n(same image)", "RdBu_r",
             vmin=-np.abs(outputs).max(), vmax=np.abs(outputs).max())
    layers = np.arange(1, len(bias) + 1)
    ax = axes[4]
    ax.plot(report["gate_bias_mean"], layers, marker=".", label="mean $b_T$")
    if report.get("train_images"):
        ax.plot(report["mean_gate_train"], layers, marker=".", label="mean T (training images)")
    ax.plot(report["mean_gate"], layers, marker=".", label="mean T (test set)")
    ax.plot(np.mean(example["gate"], axis=1), layers, marker=".", label="mean T (one image)")
    ax.axvline(report["gate_bias_init"], color="grey", ls=":", label="initial $b_T$")
    ax.set_ylim(len(bias) + 0.5, 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="per layer", xlabel="value", ylabel="highway layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(report["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def lesion(report: dict, path: Path) -> None:
    """Paper Figure 4: error with one layer's gates forced shut (pure carry), per layer."""
    rows = report["layers"]
    index = [r["index"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    for key, label, colour in (("test_error", "test set", "tab:blue"),
                               ("train_error", "training images", "tab:orange")):
        ax.plot(index, [100 * r[key] for r in rows], marker="o", ms=3, color=colour,
                label=f"lesioned, {label}")
        ax.axhline(100 * report[f"baseline_{key}"], color=colour, ls="--", lw=1,
                   label=f"not lesioned, {label}")
    ax.set(xlabel="lesioned highway layer (gate forced to 0: the layer copies its input)",
           ylabel="error (%)", yscale="log", title=report["title"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table1(report: dict, curves: dict[int, list[dict[str, float]]], path: Path) -> None:
    """Table 1 over seeds: validation accuracy per epoch (the chosen epoch marked), and each
    seed's test accuracy beside the mean ± std, our goal and the paper's mean ± std."""
    fig, (ax_val, ax_test) = plt.subplots(1, 2, figsize=(11, 4),
                                          gridspec_kw={"width_ratios": (3, 2)})
    rows = {r["seed"]: r for r in report["runs"]}
    for seed, rows_of_seed in sorted(curves.items()):
        epochs = [r["epoch"] for r in rows_of_seed]
        line, = ax_val.plot(epochs, [100 * r["val_accuracy"] for r in rows_of_seed],
                            marker=".", label=f"seed {seed}")
        chosen = rows[seed]
        ax_val.plot(chosen["epoch"], 100 * chosen["val_accuracy"], marker="*", ms=14,
                    color=line.get_color(), ls="none")
    ax_val.set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(99.0, 100.0),
               title="validation accuracy (★: the epoch each run keeps)")
    ax_val.legend(fontsize=8)
    paper = report["paper"]
    ax_test.axhspan(100 * (paper["mean"] - paper["std"]), 100 * (paper["mean"] + paper["std"]),
                    color="grey", alpha=0.3, label="paper: mean ± std")
    ax_test.axhline(100 * report["goal_mean"], color="tab:green", ls=":", label="goal for our mean")
    if report["mean"] is not None:
        std = report["std"] or 0.0
        ax_test.axhspan(100 * (report["mean"] - std), 100 * (report["mean"] + std),
                        color="tab:blue", alpha=0.2, label="ours: mean ± std")
    seeds = [r["seed"] for r in report["runs"]]
    ax_test.plot(seeds, [100 * r["test_accuracy"] for r in report["runs"]], marker="o",
                 ls="none", color="tab:blue", label="ours: one run")
    ax_test.set_xticks(report["seeds"])
    ax_test.set(xlabel="seed", ylabel="test accuracy (%)", title="test accuracy, once per run",
                xlim=(min(report["seeds"]) - 0.5, max(report["seeds"]) + 0.5))
    ax_test.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2f}"))
    for ax in (ax_val, ax_test):
        ax.grid(alpha=0.3)
    ax_test.legend(fontsize=8)
    name = f"recipe {report['name']}: " if "name" in report else ""
    fig.suptitle(f"Table 1, {name}{report['recipe']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def gate_drift(report: dict, path: Path) -> None:
    """Drift scores per condition against the threshold, and the median PSI per layer
    (``python -m training.experiments drift``)."""
    rows = report["conditions"]
    fig, (ax, heat) = plt.subplots(1, 2, figsize=(13, 0.45 * len(rows) + 2),
                                   gridspec_kw={"width_ratios": [3, 2]})
    for y, row in enumerate(rows):
        color = "tab:red" if row["crosses_threshold"] else (
            "tab:orange" if row["windows_over_threshold"] else "tab:green")
        ax.scatter(np.maximum(row["scores"], 1e-3), [y] * len(row["scores"]), s=10, alpha=0.5,
                   color=color)
        quality = (f"acc {100 * row['accuracy']:.1f}%" if "accuracy" in row
                   else f"conf {row['mean_confidence']:.2f}")
        ax.annotate(quality, (1.02, y), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8)
    ax.axvline(report["threshold"], color="k", linestyle="--",
               label=f"threshold {report['threshold']}")
    ax.set(xscale="log", yticks=range(len(rows)), yticklabels=[r["condition"] for r in rows],
           xlabel=f"drift score (largest layer PSI), windows of {report['window']} images")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    matrix = np.log10(np.maximum([r["layer_psi_median"] for r in rows], 1e-3))
    image = heat.imshow(matrix, aspect="auto", cmap="magma", vmin=-3, vmax=1)
    heat.set(yticks=[], xticks=range(len(report["layers"])),
             xticklabels=[n.replace("highway_", "") for n in report["layers"]],
             title="median PSI per layer (log10)")
    heat.tick_params(axis="x", rotation=45, labelsize=8)
    fig.colorbar(image, ax=heat)
    fig.suptitle(f"Gate drift of {report['model']} vs its reference; {report['data']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
