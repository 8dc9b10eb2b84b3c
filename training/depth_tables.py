"""The depth experiment's Markdown tables (log and RESULTS.md), from its runs' records.

No TensorFlow here: the docs tests rebuild these tables from the committed JSON.
"""

from __future__ import annotations

import math

from training.config import KINDS


def rank(run: dict) -> tuple[bool, float]:
    """Sort key of the best run: diverged runs last, one with no finite loss after every other."""
    loss = run["best_train_loss"]
    return run["diverged"], math.inf if loss is None else loss


def loss_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def accuracy_text(value: float | None) -> str:
    # None is a diverged run: its weights hold NaN, so there is no accuracy to show.
    return "diverged" if value is None else f"{100 * value:.2f}%"


def _bias(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _cell(runs: list[dict]) -> str:
    """The lowest loss over some runs and how many of them diverged (a diverged run counts
    with its last finite loss); "–" where there are none."""
    if not runs:
        return "–"
    losses = [r["best_train_loss"] for r in runs if r["best_train_loss"] is not None]
    diverged = sum(r["diverged"] for r in runs)
    text = f"{min(losses):.4f}" if losses else "–"
    return text + (f" ({diverged} of {len(runs)} diverged)" if diverged else "")


def depth_summary(rows: list[dict]) -> str:
    """The best run per configuration as a Markdown table (for the log and RESULTS.md)."""
    lines = ["| kind | depth | params | best train loss | final train loss | test accuracy | lr "
             "| gate bias |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['kind']} | {r['depth']} | {r['params']:,} | "
              f"{loss_text(r['best_train_loss'])} | {loss_text(r['final_train_loss'])} | "
              f"{accuracy_text(r['test_accuracy'])} | {r['lr']:g} | {_bias(r.get('gate_bias'))} |"
              for r in rows]
    return "\n".join(lines)


def grid_table(runs: list[dict]) -> str:
    """Every configuration (kind, depth, gate bias) × learning rate: the best loss over seeds."""
    lrs = sorted({r["lr"] for r in runs})
    configs = list(dict.fromkeys((r["kind"], r["depth"], r.get("gate_bias")) for r in runs))
    lines = ["| kind | depth | gate bias | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |",
             "|---|---:|---:|" + "---:|" * len(lrs)]
    for kind, depth, bias in configs:
        cells = [_cell([r for r in runs if (r["kind"], r["depth"], r.get("gate_bias"), r["lr"])
                        == (kind, depth, bias, lr)]) for lr in lrs]
        lines.append(f"| {kind} | {depth} | {_bias(bias)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bias_table(runs: list[dict]) -> str:
    """The highway nets' gate-bias search: depths × gate biases, best loss over lr and seeds."""
    highway = [r for r in runs if r["kind"] == "highway"]
    biases = sorted({r["gate_bias"] for r in highway}, reverse=True)
    lines = ["| depth | " + " | ".join(f"bias {b:g}" for b in biases) + " |",
             "|---:|" + "---:|" * len(biases)]
    for depth in sorted({r["depth"] for r in highway}):
        cells = [_cell([r for r in highway if (r["depth"], r["gate_bias"]) == (depth, b)])
                 for b in biases]
        lines.append(f"| {depth} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_rows(runs: list[dict]) -> list[dict]:
    """Per depth with both kinds: the best plain and highway runs and plain's loss ÷ highway's."""
    rows = []
    for depth in sorted({r["depth"] for r in runs}):
        mine = {kind: [r for r in runs if (r["kind"], r["depth"]) == (kind, depth)]
                for kind in KINDS}
        if not all(mine.values()):
            continue
        plain, highway = (min(mine[kind], key=rank) for kind in KINDS)
        both = plain["best_train_loss"] and highway["best_train_loss"]
        rows.append({"depth": depth, "plain": plain, "highway": highway,
                     "ratio": plain["best_train_loss"] / highway["best_train_loss"]
                     if both else None,
                     "runs": {kind: len(mine[kind]) for kind in KINDS}})
    return rows


def ratio_table(runs: list[dict]) -> str:
    """The best plain against the best highway net at each depth (the paper's comparison)."""
    lines = ["| depth | runs (plain / highway) | best plain: loss (lr) | "
             "best highway: loss (lr, gate bias) | plain ÷ highway |",
             "|---:|---|---|---|---:|"]
    for row in ratio_rows(runs):
        p, h = row["plain"], row["highway"]
        ratio = "–" if row["ratio"] is None else f"{row['ratio']:.1f}×"
        lines.append(f"| {row['depth']} | {row['runs']['plain']} / {row['runs']['highway']} | "
                     f"{loss_text(p['best_train_loss'])} ({p['lr']:g}) | "
                     f"{loss_text(h['best_train_loss'])} ({h['lr']:g}, {_bias(h['gate_bias'])}) | "
                     f"{ratio} |")
    return "\n".join(lines)
