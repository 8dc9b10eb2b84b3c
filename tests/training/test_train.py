"""The trainer: a real short run on the real MNIST fixture, determinism, resume, CLI errors."""

import csv
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from training.__main__ import main
from training.data import load_mnist
from training.train import TrainConfig, train

FIXTURE = "tests/fixtures/mnist"
RUN_FILES = {"model.keras", "history.csv", "curves.png", "metrics.json", "train.log"}


@pytest.fixture(scope="module")
def fixture_data():
    return load_mnist(FIXTURE)


def _config(out, **overrides):
    values = dict(model="fc", depth=3, epochs=8, batch_size=32, lr=3e-3, val_size=500, seed=0,
                  data_dir=FIXTURE, out=str(out), verbose=0, command="test")
    values.update(overrides)
    return TrainConfig(**values)


def test_short_real_training_run_clears_the_bar_and_writes_the_run(tmp_path, fixture_data):
    # 2,500 real training images, 8 epochs of a 3-layer highway net: far above
    # chance (10%); measured 88.7% on the 2,000 fixture test images.
    metrics = train(_config(tmp_path), fixture_data)
    assert metrics["test_accuracy"] >= 0.85
    assert {p.name for p in tmp_path.iterdir()} == RUN_FILES
    written = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "params", "epochs", "train_seconds", "versions",
                "command", "date", "machine"):
        assert key in written
    log = (tmp_path / "train.log").read_text().splitlines()
    assert log[:2] == ["test", f"machine: {written['machine']}"]
    assert written["params"] == 2 * (50 * 50 + 50) * 2 + 784 * 50 + 50 + 510
    with (tmp_path / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_history(tmp_path, fixture_data):
    runs = []
    for name in ("a", "b"):
        train(_config(tmp_path / name, epochs=2, augment=2), fixture_data)
        with (tmp_path / name / "history.csv").open() as f:
            runs.append([(r["loss"], r["val_accuracy"]) for r in csv.DictReader(f)])
    assert runs[0] == runs[1]


def test_sgd_with_exponential_decay_lowers_the_learning_rate(tmp_path, fixture_data):
    train(_config(tmp_path, epochs=2, lr=None, optimizer="sgd", schedule="exponential",
                  lr_decay=0.5),
          fixture_data)
    with (tmp_path / "history.csv").open() as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    np.testing.assert_allclose(rates, [0.05 * 0.5, 0.05 * 0.25], rtol=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "resnet"], "unknown model 'resnet'"),
        (["--model", "fc", "--depth", "1"], "--depth must be at least 2"),
        (["--model", "fc", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        (["--model", "fc", "--dropout", "0.2"], "--dropout applies to conv16 and conv32, not fc"),
        (["--model", "conv16", "--dropout", "1"], "--dropout must be at least 0 and below 1"),
        (["--model", "fc", "--data-dir", "no/such/dir"],
         "no/such/dir: MNIST data directory does not exist"),
    ],
)
def test_bad_arguments_give_one_line_error(tmp_path, capsys, args, message):
    code = main([*args, "--epochs", "1", "--out", str(tmp_path / "run"),
                 *([] if "--data-dir" in args else ["--data-dir", FIXTURE])])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("highway-train: error: ") and message in err
    assert err.count("\n") == 1


def test_console_entry_point_runs_as_a_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training", "--model", "seed", "--epochs", "1", "--val-size",
         "2500", "--data-dir", FIXTURE, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "65,240 parameters" in result.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["params"] == 65_240


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    """SIGKILL mid-run (as a machine going away), then the same command again: every epoch
    once in history.csv, the log says where it resumed, the backup is gone at the end."""
    out = tmp_path / "run"
    args = ["--model", "fc", "--depth", "3", "--epochs", "20", "--batch-size", "32",
            "--val-size", "2000", "--data-dir", FIXTURE, "--out", str(out)]
    first = subprocess.Popen([sys.executable, "-m", "training", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "train.log"
    deadline = time.monotonic() + 120
    while not (log.is_file() and " epoch 2 " in log.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, "no epoch 2 in time"
        time.sleep(0.02)
    first.kill()
    first.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    assert main(args) == 0  # the same command again, in this process (TF is loaded already)
    with (out / "history.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, 21))
    resumed = [line for line in log.read_text().splitlines() if line.startswith("resuming")]
    assert len(resumed) == 1 and int(resumed[0].split()[-1]) >= 2
    assert not (out / "backup").exists()
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 20
