"""Table 1 over seeds: the summary JSON and its Markdown table, from the runs' records.

No TensorFlow here: the docs tests rebuild the table from the committed records.
"""

from __future__ import annotations

import statistics

PAPER = {"best": 0.9955, "mean": 0.9954, "std": 0.0002, "params": "151K"}
"""The paper's Table 1 row for the 151K-parameter MNIST network."""
GOAL = 0.9960  # the mean over the seeds we aim for (issue: "Table 1 with a mean")


def row(seed: int, metrics: dict) -> dict:
    """One seed's line of the table, from the ``metrics.json`` its trainer wrote."""
    return {"seed": seed, "test_accuracy": metrics["test_accuracy"],
            "val_accuracy": metrics["best_val_accuracy"], "epoch": metrics["best_epoch"],
            "train_seconds": metrics["train_seconds"], "params": metrics["params"],
            "command": metrics["command"],
            # Older records lack these: the trainer stamps its metrics since 2026-12-02.
            "finished": metrics.get("date"), "machine": metrics.get("machine")}


def summary(results: dict[int, dict], seeds: tuple[int, ...], recipe: str) -> dict:
    """The table: one row per finished seed, then mean and sample std over those rows.

    The run to ship is the one with the best validation accuracy (ties: the earlier seed),
    never the one with the best test accuracy.
    """
    rows = [row(s, m) for s, m in sorted(results.items())]
    acc = [r["test_accuracy"] for r in rows]
    chosen = max(rows, key=lambda r: (r["val_accuracy"], -r["seed"])) if rows else None
    mean = statistics.fmean(acc) if acc else None
    return {
        "recipe": recipe,
        "seeds": list(seeds),
        "missing": [s for s in seeds if s not in results],
        "runs": rows,
        "mean": mean,
        "std": statistics.stdev(acc) if len(acc) > 1 else None,
        "best": max(acc) if acc else None,
        # What recipes are compared by: the test set never picks a recipe.
        "val_mean": statistics.fmean(r["val_accuracy"] for r in rows) if rows else None,
        "goal_mean": GOAL,
        "goal_met": None if len(rows) < len(seeds) else mean >= GOAL,
        "chosen_by_validation": chosen["seed"] if chosen else None,
        "paper": PAPER,
    }


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def mean_text(report: dict) -> str:
    """"99.60 ± 0.02%" (sample std, in points); the mean alone while fewer than 2 runs."""
    if report["mean"] is None:
        return "–"
    if report["std"] is None:
        return _pct(report["mean"])
    return f"{100 * report['mean']:.2f} ± {100 * report['std']:.2f}%"


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds[:-1])) + f" and {seeds[-1]}" if len(seeds) > 1 else \
        str(seeds[0])


def sentence(report: dict) -> str:
    """The table in one sentence, quoted by RESULTS.md and the README alike; it starts with
    the recipe's name when the table has one."""
    text = _sentence(report)
    return f"Recipe {report['name']}, {text[0].lower()}{text[1:]}" if "name" in report else text


def _sentence(report: dict) -> str:
    paper = report["paper"]
    theirs = (f"the paper: {100 * paper['mean']:.2f} ± {100 * paper['std']:.2f}%, best "
              f"{_pct(paper['best'])}")
    goal = f"a mean of at least {_pct(report['goal_mean'])}"
    if not report["runs"]:
        return f"No seed has finished yet ({theirs})."
    done = [r["seed"] for r in report["runs"]]
    if report["missing"]:
        return (f"Seed{'s' if len(done) > 1 else ''} {_seeds(done)} finished, "
                f"{_seeds(report['missing'])} still to train: mean so far {mean_text(report)}, "
                f"best {_pct(report['best'])}; our goal, {goal} over all "
                f"{len(report['seeds'])}, is not decided yet ({theirs}).")
    verdict = "met" if report["goal_met"] else "missed"
    return (f"Over seeds {_seeds(done)}: mean {mean_text(report)}, best "
            f"{_pct(report['best'])}; our goal, {goal}, is {verdict} ({theirs}).")


def markdown(report: dict) -> str:
    """The seeds, then mean ± std and best, then the paper's row, as a Markdown table."""
    lines = ["| seed | chosen epoch | validation accuracy | test accuracy | wall time |",
             "|---|---:|---:|---:|---:|"]
    chosen = report["chosen_by_validation"]
    by_seed = {r["seed"]: r for r in report["runs"]}
    for seed in report["seeds"]:
        r = by_seed.get(seed)
        if r is None:
            lines.append(f"| {seed} | – | – | not finished | – |")
            continue
        mark = " (best validation)" if seed == chosen else ""
        lines.append(f"| {seed}{mark} | {r['epoch']} | {_pct(r['val_accuracy'])} | "
                     f"{_pct(r['test_accuracy'])} | {r['train_seconds']:,.0f} s |")
    n = len(report["runs"])
    best = "–" if report["best"] is None else _pct(report["best"])
    val_mean = "" if report["val_mean"] is None else _pct(report["val_mean"])
    lines.append(f"| mean ± std ({n} of {len(report['seeds'])} runs) | | {val_mean} | "
                 f"{mean_text(report)} | |")
    lines.append(f"| best | | | {best} | |")
    paper = report["paper"]
    lines.append(f"| paper, {paper['params']} parameters | | | {100 * paper['mean']:.2f} ± "
                 f"{100 * paper['std']:.2f}% (best {_pct(paper['best'])}) | |")
    return "\n".join(lines)


def comparison(reports: dict[str, dict], changes: dict[str, str]) -> str:
    """The recipes side by side, as a Markdown table: what changed, then the means.

    Recipes are compared on the mean validation accuracy of their chosen epochs; the test
    column is what each recipe's table reports, not what chose between them.
    """
    lines = ["| recipe | what changed | seeds finished | mean validation accuracy "
             "| mean test accuracy | goal |", "|---|---|---:|---:|---:|---|"]
    for name, report in reports.items():
        val = "–" if report["val_mean"] is None else _pct(report["val_mean"])
        goal = {None: "not decided yet", True: "met", False: "missed"}[report["goal_met"]]
        lines.append(f"| {name} | {changes[name]} | {len(report['runs'])} of "
                     f"{len(report['seeds'])} | {val} | {mean_text(report)} | {goal} |")
    return "\n".join(lines)
