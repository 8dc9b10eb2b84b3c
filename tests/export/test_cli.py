"""``highway-export`` end to end, and every user error as one line with a non-zero exit."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import sys
import zipfile

import pytest

from export.__main__ import main
from tests.conftest import TINY_MODEL_NAME


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_line(err: str, starts: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"highway-export: error: {starts}"), err


def save_model(path, shape=(28, 28), dtype="uint8", plain=False):
    import keras

    from training.models import fc

    if plain:
        model = fc(3, plain=True)
    else:
        images = keras.Input(shape=shape, dtype=dtype, name="images")
        x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(images))
        model = keras.Model(images, keras.layers.Dense(10, activation="softmax")(x))
    model.save(path)
    return path


def test_missing_model_file(tmp_path, capsys):
    code, err = run_cli(capsys, "--model", tmp_path / "none.keras", "--repository",
                        tmp_path / "repo")
    assert code == 1
    assert_one_line(err, f"model file not found: {tmp_path}/none.keras")
    assert not (tmp_path / "repo").exists()  # nothing is created before the model loads


def test_text_file_is_not_a_keras_model(tmp_path, capsys):
    (tmp_path / "model.keras").write_text("not a model\n")
    code, err = run_cli(capsys, "--model", tmp_path / "model.keras", "--repository", tmp_path)
    assert code == 1
    assert_one_line(err, "not a Keras model file (expected a .keras archive)")


def test_zip_that_is_not_a_keras_model(tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as z:
        z.writestr("hello.txt", "hi")
    code, err = run_cli(capsys, "--model", tmp_path / "model.keras", "--repository", tmp_path)
    assert code == 1
    assert_one_line(err, f"not a loadable Keras model: {tmp_path}/model.keras (")


@pytest.mark.parametrize(("shape", "dtype", "shown"), [
    ((32, 32), "uint8", "uint8 [None, 32, 32]"),
    ((28, 28), "float32", "float32 [None, 28, 28]"),
])
def test_model_with_an_unexpected_input(tmp_path, capsys, shape, dtype, shown):
    path = save_model(tmp_path / "other.keras", shape, dtype)
    code, err = run_cli(capsys, "--model", path, "--repository", tmp_path / "repo")
    assert code == 1
    assert_one_line(err, f"{path}: unexpected input {shown}; expected uint8 [N, 28, 28]")


def test_model_without_highway_layers(tmp_path, capsys):
    path = save_model(tmp_path / "plain.keras", plain=True)
    code, err = run_cli(capsys, "--model", path, "--repository", tmp_path / "repo")
    assert code == 1
    assert_one_line(err, f"{path}: the model has no highway layers to export")


def test_unwritable_repository(tmp_path, capsys, tiny_keras_model):
    blocker = tmp_path / "repo"
    blocker.write_text("a file where the repository should be\n")
    code, err = run_cli(capsys, "--model", tiny_keras_model, "--repository", blocker)
    assert code == 1
    assert_one_line(err, f"cannot write model repository {blocker}: ")


def test_invalid_model_name(tmp_path, capsys, tiny_keras_model):
    code, err = run_cli(capsys, "--model", tiny_keras_model, "--repository", tmp_path,
                        "--name", "../escape")
    assert code == 1
    assert_one_line(err, "invalid model name '../escape'")


def test_existing_version_is_kept_and_the_next_free_one_is_used_with_its_keras_model(
        tmp_path, capsys, exported_repository, tiny_keras_model):
    repo = tmp_path / "repo"
    shutil.copytree(exported_repository, repo)
    original = (repo / TINY_MODEL_NAME / "1" / "model.onnx").read_bytes()
    code, err = run_cli(capsys, "--model", tiny_keras_model, "--repository", repo,
                        "--version", "1")
    assert code == 1
    assert_one_line(err, f"{repo}/{TINY_MODEL_NAME}/1 already exists")
    assert main(["--model", str(tiny_keras_model), "--repository", str(repo),
                 "--with-keras"]) == 0
    out = capsys.readouterr().out
    assert "fused 2 highway gates" in out and "top-1 agreement 100.00%" in out
    assert (repo / TINY_MODEL_NAME / "1" / "model.onnx").read_bytes() == original
    assert (repo / TINY_MODEL_NAME / "2" / "model.keras").read_bytes() == (
        tiny_keras_model.read_bytes())
    assert sorted(p.name for p in (repo / TINY_MODEL_NAME).iterdir()) == [
        "1", "2", "config.pbtxt", "labels.txt"]


def write_idx(folder, fixture_mnist, n: int) -> None:
    """Four IDX files holding ``n`` real images per split."""
    folder.mkdir()
    for stem, array, magic in [
        ("train-images-idx3-ubyte", fixture_mnist.x_train[:n], 0x803),
        ("train-labels-idx1-ubyte", fixture_mnist.y_train[:n], 0x801),
        ("t10k-images-idx3-ubyte", fixture_mnist.x_test[:n], 0x803),
        ("t10k-labels-idx1-ubyte", fixture_mnist.y_test[:n], 0x801),
    ]:
        header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(header + array.tobytes())


def test_failed_verification_leaves_no_version_behind(tmp_path, capsys, tiny_keras_model,
                                                      fixture_mnist):
    write_idx(tmp_path / "few", fixture_mnist, 10)
    code, err = run_cli(capsys, "--model", tiny_keras_model, "--repository", tmp_path / "repo",
                        "--data-dir", tmp_path / "few")
    assert code == 1
    assert_one_line(err, "verification data ")
    assert "has 10 test images; at least 1000 are needed" in err
    assert list((tmp_path / "repo" / TINY_MODEL_NAME).iterdir()) == []  # no staging, no "1"


def test_module_entry_point_reports_errors_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "export", "--model", str(tmp_path / "none.keras"),
         "--repository", str(tmp_path / "repo")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == f"highway-export: error: model file not found: {tmp_path}/none.keras\n"


def test_too_few_verification_images_is_refused_before_any_work(tmp_path, capsys):
    code, err = run_cli(capsys, "--model", tmp_path / "none.keras", "--repository",
                        tmp_path / "repo", "--images", "100")
    assert code == 1
    assert_one_line(err, "--images must be at least 1000, got 100")


def test_version_must_be_positive(tmp_path, capsys, tiny_keras_model):
    code, err = run_cli(capsys, "--model", tiny_keras_model, "--repository", tmp_path / "repo",
                        "--version", "0")
    assert code == 1
    assert_one_line(err, "version must be a positive integer, got 0")
    assert not (tmp_path / "repo").exists()


def test_model_with_other_gates_is_not_added_beside_existing_versions(
        tmp_path, capsys, exported_repository, exported):
    seed_keras, _ = exported("seed")
    repo = tmp_path / "repo"
    shutil.copytree(exported_repository, repo)
    code, err = run_cli(capsys, "--model", seed_keras, "--repository", repo)
    assert code == 1
    assert_one_line(err, f"{repo}/{TINY_MODEL_NAME} holds versions with highway layers "
                    "['highway1', 'highway2'], this model has ['highway_conv1', ")
    assert sorted(p.name for p in (repo / TINY_MODEL_NAME).iterdir()) == [
        "1", "config.pbtxt", "labels.txt"]
