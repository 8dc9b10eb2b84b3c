"""Smoke tests of ``python -m server.bench``: real servers, load and ORT; no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from server import bench

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_quick_run_measures_raw_ort_real_and_naive_servers_over_both_apis(tiny_repository,
                                                                           tmp_path):
    out = tmp_path / "bench.json"
    done = _bench("--quick", "--repository", str(tiny_repository), "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())

    assert set(result["raw"]) == {"1", "8"}
    for raw in result["raw"].values():
        assert raw["median_images_per_s"] > 0 and raw["p50_ms"] > 0
        assert len(raw["slices_images_per_s"]) == 2  # one slice before, one after the servers
    runs = {(r["server"], r["api"], r["images"], r["concurrency"]): r for r in result["runs"]}
    expected = {(server, api, n, 2) for server in ("real", "naive")
                for api in ("ModelInfer", "Predict") for n in (1, 8)}
    assert set(runs) == expected
    for key, run in runs.items():
        assert run["requests"] > 0, key
        assert run["errors"] == 0, (key, run["error_codes"])
        assert run["answers_checked"] == 2, key  # each client's first answer was verified
        assert run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"], key
        assert run["vs_best_raw"] == pytest.approx(
            run["images_per_s"] / result["best_raw_images_per_s"])
    assert result["server_exit_codes"] == {"real": 0, "naive": 0}  # SIGTERM: clean exit
    assert "| real | ModelInfer | 1 | 2 |" in done.stdout
    pytest.importorskip("matplotlib")
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_missing_model_is_one_line_error_exit_1(tmp_path):
    done = _bench("--quick", "--repository", str(tmp_path / "nowhere"), timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"bench: error: no highway_mnist/<version>/model.onnx in {tmp_path / 'nowhere'}"]


@pytest.mark.parametrize("loads", ["1x", "0x4", "axb", "1x2x3"])
def test_bad_loads_flag_is_refused_by_the_parser(loads):
    with pytest.raises(SystemExit) as e:
        bench.parse(["--loads", loads])
    assert e.value.code == 2


def test_quick_settings_override_defaults_but_explicit_flags_win():
    s = bench.parse(["--quick", "--duration", "1.5", "--loads", "1x16,64x4"])
    assert s.duration_s == 1.5 and s.loads == ((1, 16), (64, 4))
    assert s.raw_batches == bench.QUICK["raw_batches"]
