"""scripts/gpu_check.sh without a GPU: its one-line refusals, and a CPU dry run's JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from highway_core.facts import shipped_model

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def run(*args: str, path: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def one_line(result: subprocess.CompletedProcess, starts: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"gpu_check: {starts}"), \
        result.stderr


@pytest.fixture
def fake_gpu(tmp_path) -> str:
    """A PATH whose nvidia-smi lists one GPU, to reach the checks that follow it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Test GPU (UUID: GPU-0)'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_without_a_gpu_it_fails_in_one_line():
    one_line(run(), "no NVIDIA GPU visible")


@pytest.mark.parametrize(("args", "starts"), [
    (("--bogus",), "unknown argument '--bogus'"),
    (("--seconds", "fast"), "--seconds needs a number"),
    (("--pieces",), "--pieces needs a folder"),
])
def test_bad_arguments_fail_in_one_line(args, starts):
    one_line(run(*args), starts)


def test_missing_pieces_are_named(tmp_path, fake_gpu):
    one_line(run("--pieces", str(tmp_path), path=fake_gpu),
             f"no onnxruntime-gpu pieces in {tmp_path}")


def test_a_wheel_for_another_python_is_refused(tmp_path, fake_gpu):
    for i, part in enumerate((b"PK\x03\x04", b"rest"), start=1):
        (tmp_path / f".gpu{i}").mkdir()
        (tmp_path / f".gpu{i}" / f"part-0{i - 1}").write_bytes(part)
    name = "onnxruntime_gpu-1.31.1-cp27-cp27-manylinux_2_27_x86_64.whl"
    (tmp_path / ".gpu1" / "WHEEL_NAME").write_text(name + "\n")
    one_line(run("--pieces", str(tmp_path), path=fake_gpu), f"{name} does not fit")


def test_cpu_dry_run_writes_the_result_file(tmp_path):
    out = tmp_path / "gpu.json"
    result = run("--dry-run-cpu", "--quick", "--no-server", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["dry_run_on_cpu"] is True
    assert report["model"] == f"{shipped_model().as_posix()} (fp32)"
    assert report["raw"]["provider"] == "CPUExecutionProvider"
    for batch in ("1", "64"):
        figures = report["raw"]["batches"][batch]
        assert figures["run"]["images_per_s"] > 0
        assert figures["io_binding_on_device"]["images_per_s"] > 0
    assert report["raw"]["parity_vs_cpu"]["max_abs_diff_probabilities"] == 0.0
    assert report["server"] == {"skipped": "not run (--no-server)"}
    assert str(tmp_path) not in json.dumps(report["raw"])
