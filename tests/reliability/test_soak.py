"""Soak (``-m soak``): 10 minutes of moderate mixed load; zero errors, RSS growth < 50 MB.

Eight closed-loop clients in two processes cycle through single-image, 8-image and
64-image requests over both APIs, in 30-second legs. The server's resident memory
is read after every leg; growth is the last reading minus the reading after the
first full cycle of legs (every request size seen once: allocator and ORT arenas
warm). Settings come from the
environment when the run is started: HIGHWAY_SOAK_SECONDS (default 600),
HIGHWAY_SOAK_REPOSITORY (default: the tiny test repository) and HIGHWAY_SOAK_OUT
(a JSON file for the result).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bench.harness import request_bytes
from bench.load import ClientPool, Scenario
from tests.reliability.support import MODEL, assert_serves_correctly, images, running_server

LEGS = [Scenario("ModelInfer", 1, 8), Scenario("Predict", 8, 8), Scenario("ModelInfer", 64, 8),
        Scenario("Predict", 1, 8)]
LEG_S = 30.0


@pytest.mark.soak
def test_soak_zero_errors_and_flat_memory(tiny_repository, tmp_path):
    seconds = float(os.environ.get("HIGHWAY_SOAK_SECONDS", "600"))
    repository = Path(os.environ.get("HIGHWAY_SOAK_REPOSITORY", str(tiny_repository)))
    legs, requests, errors, rss = 0, 0, {}, []
    started = time.monotonic()
    with running_server(repository, log=tmp_path / "server.log") as server, \
            ClientPool(2) as pool:
        while legs == 0 or time.monotonic() - started < seconds:
            scenario = LEGS[legs % len(LEGS)]
            payload = request_bytes(scenario.api, MODEL, images(scenario.images))
            result, _ = pool.run(server.target, scenario, payload, 0.5, min(LEG_S, seconds))
            legs += 1
            requests += len(result.latencies)
            for code, n in result.errors.items():
                errors[code] = errors.get(code, 0) + n
            rss.append(server.rss_mb())
            print(f"soak leg {legs} ({time.monotonic() - started:.0f} s): {scenario}, "
                  f"{len(result.latencies)} requests, errors {result.errors}, "
                  f"RSS {rss[-1]:.1f} MB", flush=True)
        assert_serves_correctly(server)
    warm = min(len(LEGS), len(rss)) - 1  # the reading after the first full cycle
    summary = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": seconds,
               "repository": repository.name, "legs": legs, "requests": requests,
               "errors": errors, "rss_first_leg_mb": rss[0],
               "rss_start_mb": rss[warm], "rss_end_mb": rss[-1], "rss_max_mb": max(rss),
               "growth_mb": rss[-1] - rss[warm], "rss_per_leg_mb": [round(x, 1) for x in rss]}
    print("soak result:", json.dumps(summary))
    if os.environ.get("HIGHWAY_SOAK_OUT"):
        Path(os.environ["HIGHWAY_SOAK_OUT"]).write_text(json.dumps(summary, indent=2) + "\n")
    assert not errors
    assert summary["growth_mb"] < 50
