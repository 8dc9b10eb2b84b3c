"""Smoke tests of ``python -m bench``: real servers, load and ORT; no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report as bench_report
from bench import settings as bench
from bench.streams import split

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_quick_run_measures_raw_ort_real_naive_and_floor_servers_over_both_apis(
        tiny_repository, tmp_path):
    out = tmp_path / "bench.json"
    done = _bench("--quick", "--repository", str(tiny_repository), "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())

    assert set(result["raw"]) == {"1", "8"}
    for raw in result["raw"].values():
        assert raw["median_images_per_s"] > 0 and raw["p50_ms"] > 0
        assert len(raw["slices_images_per_s"]) == 2  # one slice before, one after the servers
    runs = {(r["server"], r["api"], r["images"], r["concurrency"]): r for r in result["runs"]}
    expected = {(server, api, n, 2) for server in ("real", "naive", "floor")
                for api in ("ModelInfer", "Predict") for n in (1, 8)}
    expected |= {(server, api, 1, 2) for server in ("real", "floor")  # the naive has no streams
                 for api in ("ModelStreamInfer", "PredictStream")}
    assert set(runs) == expected
    for key, run in runs.items():
        assert run["requests"] > 0, key
        assert run["errors"] == 0, (key, run["error_codes"])
        assert run["answers_checked"] == 2, key  # each client's first answer was verified
        assert run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"], key
        assert run["vs_best_raw"] == pytest.approx(
            run["images_per_s"] / result["best_raw_images_per_s"])
        # The ceiling follows from the floor and raw ORT: 1 / (1/floor + 1/best raw).
        floor = runs[("floor", *key[1:])]["images_per_s"]
        assert run["python_grpc_ceiling_images_per_s"] == pytest.approx(
            1 / (1 / floor + 1 / result["best_raw_images_per_s"]))
    assert result["server_exit_codes"] == {"real": 0, "naive": 0, "floor": 0}  # SIGTERM
    assert "| real | ModelInfer | 1 | 2 |" in done.stdout
    assert "| floor | Predict | 8 | 2 |" in done.stdout
    assert "| real | ModelStreamInfer | 1 | 2 |" in done.stdout
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


def _run(server: str, images: int, c: int, ips: float, p50: float,
         api: str = "ModelInfer") -> dict:
    return {"server": server, "api": api, "images": images, "concurrency": c,
            "images_per_s": ips, "p50_ms": p50}


def test_targets_include_the_python_grpc_floor_and_the_ceiling_it_implies():
    raw = {"1": {"median_images_per_s": 2000.0, "p50_ms": 0.5},
           "64": {"median_images_per_s": 4000.0, "p50_ms": 16.0}}
    result = {"raw": raw, "runs": [
        _run("real", 1, 1, 900, 1.1), _run("floor", 1, 1, 2500, 0.4),
        _run("real", 1, 16, 1800, 9.0), _run("floor", 1, 16, 4000, 4.0),
        _run("real", 64, 4, 3600, 70.0), _run("floor", 64, 4, 76000, 3.4)]}
    bench_report.add_ratios(result)
    targets = {t["target"]: (t["value"], t["met"]) for t in result["targets"]}

    # 1 / (1/4000 + 1/4000) = 2000 img/s: even a free server stops at 0.5 x best raw.
    assert targets["ModelInfer 1 image(s) c=16: Python gRPC ceiling x best raw >= 0.8"] == (
        pytest.approx(0.5), False)
    assert targets["ModelInfer 1 image(s) c=16: real / ceiling"][0] == pytest.approx(0.9)
    # 1 / (1/76000 + 1/4000) = 3800 img/s = 0.95 x best raw: reachable in principle.
    assert targets["ModelInfer 64 image(s) c=4: Python gRPC ceiling x best raw >= 0.95"] == (
        pytest.approx(0.95), True)
    assert targets["ModelInfer c=1 gRPC floor p50 (no model) <= 0.3 ms"] == (
        pytest.approx(0.4), False)
    assert targets["ModelInfer c=1 p50 <= raw b1 p50 + 0.3 ms"] == (pytest.approx(0.6), False)


def test_stream_targets_compare_with_best_raw_raw_b1_latency_and_the_unary_twin():
    raw = {"1": {"median_images_per_s": 2000.0, "p50_ms": 0.5},
           "64": {"median_images_per_s": 4000.0, "p50_ms": 16.0}}
    result = {"raw": raw, "runs": [
        _run("real", 1, 16, 1800, 9.0), _run("real", 1, 16, 3400, 4.0, "ModelStreamInfer"),
        _run("real", 1, 1, 1500, 0.7, "ModelStreamInfer")]}
    bench_report.add_ratios(result)
    targets = {t["target"]: (t["value"], t["met"]) for t in result["targets"]}

    assert targets["ModelStreamInfer 1 image c=16 >= 0.8 x best raw"] == (
        pytest.approx(0.85), True)
    assert targets["ModelStreamInfer 1 image c=16 >= 1.5 x ModelInfer c=16"] == (
        pytest.approx(3400 / 1800), True)
    assert targets["ModelStreamInfer c=1 p50 <= raw b1 p50 + 0.3 ms"] == (
        pytest.approx(0.2), True)
    assert not any(t.startswith("PredictStream") for t in targets)  # not measured: no target


@pytest.mark.parametrize("total,most,streams", [
    (1, 8, [1]), (8, 8, [8]), (9, 8, [5, 4]), (20, 8, [7, 7, 6]), (0, 8, [])])
def test_requests_in_flight_are_spread_over_the_fewest_even_streams(total, most, streams):
    assert split(total, most) == streams


def test_stream_flags_are_checked():
    s = bench.parse(["--stream-loads", "1x1,1x32", "--stream-depth", "4",
                     "--stream-apis", "ModelStreamInfer"])
    assert s.stream_loads == ((1, 1), (1, 32)) and s.stream_depth == 4
    assert s.stream_apis == ("ModelStreamInfer",)
    assert bench.parse(["--stream-apis", ""]).stream_apis == ()
    for bad in (["--stream-apis", "ModelInfer"], ["--stream-depth", "0"]):
        with pytest.raises(SystemExit) as e:
            bench.parse(bad)
        assert e.value.code == 2


def test_tls_run_drives_the_real_server_over_tls(tiny_repository, tmp_path):
    out = tmp_path / "bench_tls.json"
    done = _bench("--quick", "--tls", "--no-naive", "--no-floor", "--apis", "Predict",
                  "--repository", str(tiny_repository), "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["settings"]["tls"] is True
    assert {r["server"] for r in result["runs"]} == {"real"}
    for run in result["runs"]:
        assert run["requests"] > 0 and run["errors"] == 0, run["error_codes"]
        assert run["answers_checked"] == 2
