"""Corrupt, truncated or missing model files at start: a one-line error and exit != 0.

Each case breaks a copy of the tiny repository and starts ``python -m server`` on
it, as an operator would; the server must refuse to start, say why on one line
(no traceback), and never report itself ready.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path("highway_mnist")


def _truncate(repo: Path) -> None:
    onnx = repo / MODEL / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])


def _garbage(repo: Path) -> None:
    (repo / MODEL / "1" / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)) * 40)


def _empty(repo: Path) -> None:
    (repo / MODEL / "1" / "model.onnx").write_bytes(b"")


def _text_instead(repo: Path) -> None:
    (repo / MODEL / "1" / "model.onnx").write_text("this is not a model\n")


def _missing_onnx(repo: Path) -> None:
    (repo / MODEL / "1" / "model.onnx").unlink()


def _corrupt_config(repo: Path) -> None:
    (repo / MODEL / "config.pbtxt").write_text('name: "highway_mnist"\nmax_batch_size: {{{\n')


def _empty_repository(repo: Path) -> None:
    shutil.rmtree(repo / MODEL)


def _no_repository(repo: Path) -> None:
    shutil.rmtree(repo)


CASES = {
    "model truncated to half": _truncate,
    "model is random bytes": _garbage,
    "model file empty": _empty,
    "model is a text file": _text_instead,
    "model file missing": _missing_onnx,
    "config.pbtxt corrupt": _corrupt_config,
    "repository empty": _empty_repository,
    "repository missing": _no_repository,
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_model_files_stop_the_server_with_one_line(tiny_repository, tmp_path, case):
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repository, repo)
    CASES[case](repo)
    done = subprocess.run(
        [sys.executable, "-m", "server", "--model-repository", str(repo), "--host", "127.0.0.1",
         "--grpc-port", "0", "--metrics-port", "-1", "--device", "cpu",
         "--log-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("highway-serve: error: "), errors[0]
    assert len(errors[0]) < 400  # one readable line, not a dump
