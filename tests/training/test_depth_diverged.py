"""A diverged depth run records no accuracy: null and ``diverged: true``, never a made-up 0.1."""

from __future__ import annotations

import pytest

from training import depth
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
     "final_train_loss": 0.6, "test_accuracy": 0.9, "lr": 0.1, "seed": 0, "diverged": False},
    {"kind": "highway", "depth": 10, "params": 1, "best_train_loss": 2.2,
     "final_train_loss": 2.2, "test_accuracy": None, "lr": 0.1, "seed": 0, "diverged": True},
    {"kind": "highway", "depth": 10, "params": 1, "best_train_loss": None,
     "final_train_loss": None, "test_accuracy": None, "lr": 0.1, "seed": 1, "diverged": True},
]


def test_tables_say_diverged_where_there_is_no_accuracy():
    summary = depth.depth_summary(ROWS)
    assert "| highway | 10 | 1 | 2.2000 | 2.2000 | diverged | 0.1 |" in summary
    assert "| highway | 10 | 1 | – | – | diverged | 0.1 |" in summary
    assert "90.00%" in summary
    grid = depth.grid_table(ROWS)
    assert "| highway | 10 | 2.2000 (2 of 2 diverged) |" in grid
    assert "| plain | 10 | 0.5000 |" in grid


@pytest.mark.parametrize("runs, best_seed", [
    (ROWS[1:], 0),  # a diverged run with a finite loss ranks before one without
    ([ROWS[2], {**ROWS[0], "kind": "highway", "seed": 2}], 2),  # any trained run ranks first
])
def test_diverged_runs_rank_last(runs, best_seed):
    assert min(runs, key=depth._rank)["seed"] == best_seed


def test_a_diverged_run_is_never_kept_for_the_gate_analysis(fixture_mnist, tmp_path):
    cfg = DepthConfig(depths=(3,), kinds=("highway",), lrs=(1e4,), epochs=2, batch_size=64,
                      val_size=500, train_size=1000, keep_depth=3)
    report = depth.run_grid(cfg, fixture_mnist, tmp_path, "kept.keras")
    assert [r["diverged"] for r in report["runs"]] == [True]
    assert report["rows"][0]["test_accuracy"] is None
    assert not (tmp_path / "kept.keras").exists()
    assert not list(tmp_path.glob(".candidate_*"))
