"""The experiments CLI in quick mode on the real fixture: files, JSON schema, sane numbers.

The three commands run once each, in order, into one temporary folder (gates and
lesion analyse the network the depth run kept), through the same ``main`` as
``python -m training.experiments``.
"""

import json
import math
import shutil

import keras
import numpy as np
import pytest

from training import experiments, gate_analysis
from training.data import load_mnist

FIXTURE = "tests/fixtures/mnist"
QUICK = experiments.QUICK_DEPTH
KEPT = experiments.kept_model_name(QUICK["keep_depth"])


def _run(command: str, out, *extra: str) -> int:
    return experiments.main([command, "--quick", "--data-dir", FIXTURE, "--out", str(out),
                             *extra])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    for command in experiments.COMMANDS:
        assert _run(command, out) == 0, command
    return out


def test_quick_run_writes_every_result_file(results):
    for name in ("depth.json", "depth_runs.json", "depth.png", KEPT, "gates.json", "gates.png",
                 "lesion.json", "lesion.png"):
        assert (results / name).stat().st_size > 0, name
    for name in ("depth.png", "gates.png", "lesion.png"):
        assert (results / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(results.glob(".candidate_*")), "a losing candidate model was left behind"


def test_depth_json_has_one_sane_row_per_kind_and_depth(results):
    rows = json.loads((results / "depth.json").read_text())
    assert isinstance(rows, list)
    assert {(r["kind"], r["depth"]) for r in rows} == {
        (kind, depth) for kind in ("plain", "highway") for depth in QUICK["depths"]}
    for r in rows:
        assert isinstance(r["depth"], int) and r["epochs"] == QUICK["epochs"]
        for key in ("best_train_loss", "final_train_loss", "test_accuracy"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), key
        assert 0 < r["best_train_loss"] <= r["final_train_loss"] < math.log(10)
        # Two epochs on 2,500 images: far from good, far better than chance (10%).
        assert 0.3 < r["test_accuracy"] <= 1


def test_depth_runs_keep_every_curve_and_the_kept_model_is_the_best_highway_run(results):
    report = json.loads((results / "depth_runs.json").read_text())
    runs = report["runs"]
    assert len(runs) == len(QUICK["depths"]) * 2 * len(QUICK["lrs"]) * len(QUICK["seeds"])
    for run in runs:
        assert len(run["train_loss"]) == QUICK["epochs"]
        assert run["train_loss"][-1] < run["train_loss"][0], "training did not reduce the loss"
    assert report["kept_model"] == KEPT
    _assert_kept_model_is_the_best_highway_run(results)
    # Committed at full size: no optimizer state in the file.
    assert getattr(keras.models.load_model(results / KEPT), "optimizer", None) is None


def _assert_kept_model_is_the_best_highway_run(folder):
    model = keras.models.load_model(folder / KEPT, compile=False)
    assert len(gate_analysis.models.highway_layers(model)) == QUICK["keep_depth"] - 1
    best = next(r for r in json.loads((folder / "depth.json").read_text())
                if (r["kind"], r["depth"]) == ("highway", QUICK["keep_depth"]))
    data = load_mnist(FIXTURE)
    accuracy = (model.predict(data.x_test, verbose=0).argmax(1) == data.y_test).mean()
    assert accuracy == pytest.approx(best["test_accuracy"], abs=1e-6)


def test_resume_reuses_earlier_runs_and_trains_only_the_new_ones(results, tmp_path, capsys):
    for name in ("depth_runs.json", KEPT):
        shutil.copy(results / name, tmp_path / name)
    before = json.loads((tmp_path / "depth_runs.json").read_text())["runs"]
    lrs = [str(lr) for lr in QUICK["lrs"]] + ["0.02"]
    assert _run("depth", tmp_path, "--resume", "--lrs", *lrs) == 0
    assert capsys.readouterr().out.count("reused from an earlier invocation") == len(before)
    runs = json.loads((tmp_path / "depth_runs.json").read_text())["runs"]
    assert len(runs) == 2 * len(before)
    assert [r for r in runs if r["lr"] != 0.02] == before
    _assert_kept_model_is_the_best_highway_run(tmp_path)


def test_gates_json_has_per_layer_and_per_unit_gate_numbers(results):
    report = json.loads((results / "gates.json").read_text())
    layers, units = QUICK["keep_depth"] - 1, 50
    assert len(report["layers"]) == len(report["gate_bias_mean"]) == len(report["mean_gate"])
    assert len(report["layers"]) == layers
    assert np.shape(report["gate_bias"]) == np.shape(report["mean_gate_units"]) == (layers, units)
    assert np.shape(report["example"]["gate"]) == np.shape(report["example"]["output"])
    assert np.shape(report["example"]["gate"]) == (layers, units)
    assert all(0 < t < 1 for t in report["mean_gate"])
    # Two epochs move the biases only a little from their initial value.
    assert np.allclose(report["gate_bias_mean"], report["gate_bias_init"], atol=0.5)
    assert report["example"]["label"] in range(10)


def test_lesion_json_has_one_row_per_layer_and_matches_the_unlesioned_accuracy(results):
    report = json.loads((results / "lesion.json").read_text())
    gates = json.loads((results / "gates.json").read_text())
    assert [r["layer"] for r in report["layers"]] == gates["layers"]
    assert [r["index"] for r in report["layers"]] == list(range(1, len(gates["layers"]) + 1))
    for r in report["layers"]:
        assert 0 <= r["test_error"] <= 1 and 0 <= r["train_error"] <= 1
    assert report["baseline_test_error"] == pytest.approx(1 - gates["test_accuracy"], abs=1e-6)
    # Skipping a layer of a trained net changes what it computes: some lesion must hurt.
    assert max(r["test_error"] for r in report["layers"]) > report["baseline_test_error"]


def test_shut_gates_turns_a_layer_into_its_identity_and_restores_it(results):
    model = gate_analysis.load(results / KEPT)
    layer = gate_analysis.models.highway_layers(model)[0]
    before = [np.array(w) for w in layer.get_weights()]
    x = np.random.default_rng(0).normal(size=(8, 50)).astype("float32")
    with gate_analysis.shut_gates(layer):
        y, t = layer(x, return_gate=True)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(t), 0)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), x)
    for old, new in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_resume_with_another_grid_keeps_the_earlier_runs(results, tmp_path, capsys):
    for name in ("depth_runs.json", KEPT):
        shutil.copy(results / name, tmp_path / name)
    before = json.loads((tmp_path / "depth_runs.json").read_text())["runs"]
    assert _run("depth", tmp_path, "--resume", "--kinds", "plain", "--depths",
                str(QUICK["depths"][0]), "--lrs", "0.02") == 0
    report = json.loads((tmp_path / "depth_runs.json").read_text())
    assert report["complete"] and len(report["runs"]) == len(before) + 1
    assert [r for r in report["runs"] if r["lr"] != 0.02] == before
    rows = json.loads((tmp_path / "depth.json").read_text())
    assert len(rows) == 2 * len(QUICK["depths"])
    assert report["runs_per_config"] == [1, 2]
    _assert_kept_model_is_the_best_highway_run(tmp_path)


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert _run("gates", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("experiments: error:")
    assert "run `python -m training.experiments depth`" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    (["--depths", "1", "--keep-depth", "1"], "--depths must all be >= 2"),
    (["--lrs", "0"], "--lrs must all be positive"),
    (["--keep-depth", "7"], "--keep-depth 7 is not one of --depths"),
    (["--kinds", "resnet"], "--kinds must be plain and/or highway"),
    (["--gate-bias", "1"], "--gate-bias must be negative"),
])
def test_bad_depth_settings_are_one_line_errors(tmp_path, capsys, extra, message):
    assert _run("depth", tmp_path, *extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["plain", "highway"])
def test_depth_nets_start_with_distinct_transforms_reproducible_per_seed(kind):
    from training.depth import build

    def kernels(seed: int) -> list[np.ndarray]:
        model = build(kind, 5, seed)
        return [np.asarray(layer.kernel) for layer in model.layers
                if hasattr(layer, "kernel") and layer.name != "probabilities"]

    first = kernels(0)
    same_shape = [k for k in first if k.shape == first[-1].shape]
    assert len(same_shape) >= 3
    # Every same-shaped transform starts from its own draw, not one draw repeated.
    for i in range(len(same_shape) - 1):
        assert not np.allclose(same_shape[i], same_shape[i + 1])
    # ... and the same seed builds the same net again.
    assert all(np.array_equal(a, b) for a, b in zip(first, kernels(0), strict=True))


def test_depth_gate_bias_overrides_the_paper_rule_for_highway_layers():
    from training.depth import build

    def biases(gate_bias):
        model = build("highway", 5, 0, gate_bias)
        return {float(b) for layer in model.layers if hasattr(layer, "gate_bias")
                for b in np.asarray(layer.gate_bias)}

    assert biases(None) == {-1.0}  # the paper's rule at 5 layers
    assert biases(-5.0) == {-5.0}


def test_gates_and_lesion_name_and_hash_the_model_they_analysed(results, tmp_path):
    import hashlib

    digest = hashlib.sha256((results / KEPT).read_bytes()).hexdigest()
    for name in ("gates.json", "lesion.json"):
        report = json.loads((results / name).read_text())
        assert (report["model"], report["model_sha256"]) == (KEPT, digest), name
        assert report["date"] and "cores" in report["machine"]
    # A copied, renamed model is recorded under the name it was given, as RESULTS cites it.
    renamed = tmp_path / "highway_fc6_full.keras"
    shutil.copy(results / KEPT, renamed)
    assert _run("gates", tmp_path, "--model", str(renamed)) == 0
    report = json.loads((tmp_path / "gates.json").read_text())
    assert (report["model"], report["model_sha256"]) == (renamed.name, digest)
