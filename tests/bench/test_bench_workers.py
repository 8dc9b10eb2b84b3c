"""``python -m bench --workers 1,2``: one real server per worker count, several connections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import settings as bench

ROOT = Path(__file__).resolve().parents[2]


def test_workers_dimension_runs_each_count_over_one_connection_per_client(tiny_repository,
                                                                          tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--repository", str(tiny_repository),
         "--workers", "1,2", "--no-naive", "--no-floor", "--loads", "1x16",
         "--apis", "ModelInfer", "--stream-apis", "", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    runs = {r["server"]: r for r in result["runs"]}
    assert set(runs) == {"real", "real-w2"}
    for name, run in runs.items():
        assert run["errors"] == 0, (name, run["error_codes"])
        assert run["requests"] > 0 and run["answers_checked"] == 16, name
        assert run["connections"] == 16, name  # one per client: both servers, same load
        assert run["server_cpu_us_per_image"] > 0, name
    # The workers' memory is counted with the supervisor's: more than one process's worth.
    assert runs["real-w2"]["rss_mb"] > 1.5 * runs["real"]["rss_mb"]
    assert result["server_exit_codes"] == {"real": 0, "real-w2": 0}
    ratio = [t for t in result["targets"] if "real-w2" in t["target"]]
    assert [t["target"] for t in ratio] == ["ModelInfer 1 image(s) c=16: real-w2 / real"]
    assert ratio[0]["value"] == pytest.approx(
        runs["real-w2"]["images_per_s"] / runs["real"]["images_per_s"])
    assert "| real-w2 | ModelInfer | 1 | 16 |" in done.stdout


@pytest.mark.parametrize("workers", ["0", "1,1", "two"])
def test_bad_workers_list_is_refused_by_the_parser(workers):
    with pytest.raises(SystemExit):
        bench.parse(["--workers", workers])


def test_connections_default_to_one_per_client_only_when_workers_are_measured():
    assert bench.connections(bench.parse([])) == 1
    assert bench.connections(bench.parse(["--workers", "1,2"])) == 0
    assert bench.connections(bench.parse(["--workers", "2", "--connections", "4"])) == 4
