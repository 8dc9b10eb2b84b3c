"""The figures docs/RESULTS.md's depth section (Figure 1) draws in prose from its search,
docs/results/depth_runs.json: best losses by depth, the plain nets' second look, the gate-bias
search and the limits of the grid. The tables themselves are checked in
test_results_sources.py. No TensorFlow: JSON and Markdown only.
"""

from __future__ import annotations

import math

from tests.docs.markdown import RESULTS, folded
from tests.docs.markdown import load as _json


def _figures() -> list[str]:
    from training import depth_tables

    report = _json(RESULTS / "depth_runs.json")
    runs, config = report["runs"], report["config"]
    ratios = {r["depth"]: r for r in depth_tables.ratio_rows(runs)}
    depths = sorted(ratios)

    def best(**match) -> dict:
        return min((r for r in runs if all(r.get(k) == v for k, v in match.items())),
                   key=depth_tables.rank)

    def loss(**match) -> float:
        return best(**match)["best_train_loss"]

    def f4(value: float) -> str:
        return f"{value:.4f}"

    highway, plain = ([ratios[d][kind]["best_train_loss"] for d in depths]
                      for kind in ("highway", "plain"))
    p100, p50 = ratios[100]["plain"], ratios[50]["plain"]
    first_lr = min(config["lrs"])
    # as the bias table's cells: a diverged run counts with its last finite loss
    untrained = [min(r["best_train_loss"] for r in runs if r["kind"] == "highway"
                     and (r["depth"], r["gate_bias"]) == (d, b) and r["best_train_loss"])
                 for d in (50, 100) for b in (-1, -2)]
    equals = [loss(kind="highway", depth=100, gate_bias=b) for b in (-6, -8, -10)]
    spread = max(max(loss(kind="highway", depth=d, gate_bias=b) for b in (-4, -5, -6, -8, -10))
                 / ratios[d]["highway"]["best_train_loss"] for d in (50, 100))
    old = loss(kind="plain", depth=100, lr=first_lr) / loss(kind="highway", depth=100,
                                                             gate_bias=-5)
    steps = config["epochs"] * math.ceil(report["fitting_images"] / config["batch_size"])
    return [
        f"(best losses {', '.join(map(f4, highway[:-1]))} and {f4(highway[-1])} at "
        f"{', '.join(map(str, depths[:-1]))} and {depths[-1]} layers)",
        f"degrades steadily ({', '.join(map(f4, plain))})",
        f"best plain net's loss is {ratios[100]['ratio']:.0f}× the best highway net's",
        f"(plain-100 from {f4(loss(kind='plain', depth=100, lr=first_lr))} at lr {first_lr:g} "
        f"to {f4(p100['best_train_loss'])} at lr {p100['lr']:g}, "
        f"{100 * p100['test_accuracy']:.1f}% test accuracy; plain-50 from "
        f"{f4(loss(kind='plain', depth=50, lr=first_lr))} to {f4(p50['best_train_loss'])})",
        f"({f4(loss(kind='plain', depth=100, lr=first_lr))} against "
        f"{f4(loss(kind='highway', depth=100, gate_bias=-5))}, {old:.0f}×)",
        f"(best losses {min(untrained):.2f}–{max(untrained):.2f}; chance is {math.log(10):.2f})",
        f"({f4(loss(kind='highway', depth=100, gate_bias=-3))} at 100 layers)",
        f"within {100 * (max(equals) / min(equals) - 1):.1f}% of each other: "
        f"{', '.join(map(f4, equals[:-1]))} and {f4(equals[-1])}",
        f"At 50 layers the gap is {ratios[50]['ratio']:.0f}×",
        f"with the best at −{-ratios[50]['highway']['gate_bias']:g} for 50 layers and "
        f"−{-ratios[100]['highway']['gate_bias']:g} for 100",
        f"came within {spread:.1f}× of the best loss at both depths",
        f"Our best losses at 10 layers ({f4(highway[0])} highway, {f4(plain[0])} plain)",
        f"and plain-100's best ({p100['lr']:g})",
        f"the top of its grid ({max(config['lrs']):g}) at every depth",
        f"**The search, {len(runs)} runs** ({sum(r['kind'] == 'plain' for r in runs)} plain, "
        f"{sum(r['kind'] == 'highway' for r in runs)} highway;",
        f"{min(report['runs_per_config'])} to {max(report['runs_per_config'])} runs per "
        "configuration",
        f"**{config['epochs']} epochs over the first {report['fitting_images']:,} images",
        f"batch {config['batch_size']} ({steps} SGD steps), SGD with momentum "
        f"{config['momentum']:g}, learning rate × {config['lr_decay']:g} per epoch**",
    ]


def test_depth_prose_is_depth_runs_json():
    results = folded("docs/RESULTS.md")
    assert all(r["kind"] == "plain" or r["gate_bias"] is not None
               for r in _json(RESULTS / "depth_runs.json")["runs"])
    missing = [figure for figure in _figures() if figure not in results]
    assert not missing, missing


def test_the_highway_nets_use_the_top_learning_rate_of_the_grid():
    """RESULTS.md: "the best highway learning rate is the top of its grid at every depth"."""
    from training import depth_tables

    report = _json(RESULTS / "depth_runs.json")
    rows = depth_tables.ratio_rows(report["runs"])
    assert {row["highway"]["lr"] for row in rows} == {max(report["config"]["lrs"])}
