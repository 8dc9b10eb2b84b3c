"""A diverged depth run records no accuracy: null and ``diverged: true``, never a made-up 0.1."""

from __future__ import annotations

from dataclasses import replace

import pytest

from training import depth, depth_tables
from training.config import DepthConfig


def test_a_run_that_diverges_stores_no_test_accuracy(fixture_mnist):
    cfg = DepthConfig(depths=(3,), lrs=(1e4,), epochs=2, batch_size=64, val_size=500,
                      train_size=1000, keep_depth=3)
    run = depth.run_one(cfg, fixture_mnist, "plain", 3, lr=1e4, seed=0)
    assert run["diverged"] is True
    assert run["test_accuracy"] is None and run["test_loss"] is None
    assert None in run["train_loss"]  # the epoch whose loss was NaN
    finite = [v for v in run["train_loss"] if v is not None]
    assert run["best_train_loss"] == (min(finite) if finite else None)


def test_a_run_that_trains_stores_its_measured_accuracy(fixture_mnist):
    cfg = DepthConfig(depths=(3,), lrs=(0.05,), epochs=1, batch_size=64, val_size=500,
                      train_size=1000, keep_depth=3)
    run = depth.run_one(cfg, fixture_mnist, "highway", 3, lr=0.05, seed=0)
    assert run["diverged"] is False
    assert 0.3 < run["test_accuracy"] <= 1 and run["test_loss"] > 0


ROWS = [
    {"kind": "plain", "depth": 10, "params": 1, "best_train_loss": 0.5,
     "final_train_loss": 0.6, "test_accuracy": 0.9, "lr": 0.1, "seed": 0, "diverged": False,
     "gate_bias": None},
    {"kind": "highway", "depth": 10, "params": 1, "best_train_loss": 2.2,
     "final_train_loss": 2.2, "test_accuracy": None, "lr": 0.1, "seed": 0, "diverged": True,
     "gate_bias": -1.0},
    {"kind": "highway", "depth": 10, "params": 1, "best_train_loss": None,
     "final_train_loss": None, "test_accuracy": None, "lr": 0.1, "seed": 1, "diverged": True,
     "gate_bias": -1.0},
]


def test_tables_say_diverged_where_there_is_no_accuracy():
    summary = depth_tables.depth_summary(ROWS)
    assert "| highway | 10 | 1 | 2.2000 | 2.2000 | diverged | 0.1 | -1 |" in summary
    assert "| highway | 10 | 1 | – | – | diverged | 0.1 | -1 |" in summary
    assert "90.00%" in summary
    grid = depth_tables.grid_table(ROWS)
    assert "| highway | 10 | -1 | 2.2000 (2 of 2 diverged) |" in grid
    assert "| plain | 10 | – | 0.5000 |" in grid
    assert "| 10 | 2.2000 (2 of 2 diverged) |" in depth_tables.bias_table(ROWS)


@pytest.mark.parametrize("runs, best_seed", [
    (ROWS[1:], 0),  # a diverged run with a finite loss ranks before one without
    ([ROWS[2], {**ROWS[0], "kind": "highway", "seed": 2}], 2),  # any trained run ranks first
])
def test_diverged_runs_rank_last(runs, best_seed):
    assert min(runs, key=depth_tables.rank)["seed"] == best_seed


def test_a_diverged_run_is_never_kept_for_the_gate_analysis(fixture_mnist, tmp_path):
    cfg = DepthConfig(depths=(3,), kinds=("highway",), lrs=(1e4,), epochs=2, batch_size=64,
                      val_size=500, train_size=1000, keep_depth=3)
    report = depth.run_grid(cfg, fixture_mnist, tmp_path, "kept.keras")
    assert [r["diverged"] for r in report["runs"]] == [True]
    assert report["rows"][0]["test_accuracy"] is None
    assert not (tmp_path / "kept.keras").exists()
    assert not list(tmp_path.glob(".candidate_*"))


def test_the_ratio_table_sets_the_best_plain_against_the_best_highway_per_depth():
    runs = [ROWS[0], {**ROWS[0], "kind": "highway", "best_train_loss": 0.05, "gate_bias": -4.0,
                      "lr": 0.03}, *ROWS[1:]]
    [row] = depth_tables.ratio_rows(runs)
    assert row["ratio"] == pytest.approx(10.0) and row["runs"] == {"plain": 1, "highway": 3}
    assert "| 10 | 1 / 3 | 0.5000 (0.1) | 0.0500 (0.03, -4) | 10.0× |" in (
        depth_tables.ratio_table(runs))


def test_each_gate_bias_is_its_own_run_and_resume_reuses_it(fixture_mnist, tmp_path):
    cfg = DepthConfig(depths=(3,), kinds=("highway",), lrs=(0.05,), epochs=1, batch_size=64,
                      val_size=500, train_size=1000, keep_depth=0, gate_biases=(None, -4.0))
    first = depth.run_grid(cfg, fixture_mnist, tmp_path, "kept.keras")
    assert [r["gate_bias"] for r in first["runs"]] == [-1.0, -4.0]  # None: the paper's rule
    assert first["runs"][0]["best_train_loss"] != first["runs"][1]["best_train_loss"]
    wider = replace(cfg, gate_biases=(-1.0, -4.0, -6.0))
    second = depth.run_grid(wider, fixture_mnist, tmp_path, "kept.keras", previous=first["runs"])
    assert [r["gate_bias"] for r in second["runs"]] == [-1.0, -4.0, -6.0]
    assert second["runs"][:2] == first["runs"]  # reused, not retrained
    assert not list(tmp_path.glob("*.keras"))  # --keep-depth 0 keeps no network
