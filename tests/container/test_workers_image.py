"""The image with ``HIGHWAY_WORKERS=2``: hardened, healthy, merged metrics, clean stop.

Marked ``container`` (``pytest -m container tests/container``). The supervisor
is PID 1; the workers' metric files go to /dev/shm, so the read-only root
filesystem of the hardened run must not matter.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from protos.highway.v1 import classifier_pb2 as hw
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from tests.container.containers import BuiltImage, Engine, start_container
from tests.container.test_image import HARDENED
from tests.polling import metrics_text, parse, sample

pytestmark = pytest.mark.container

CONNECTIONS = 16


def test_two_workers_in_the_hardened_image_serve_merge_metrics_and_stop_with_0(
        engine: Engine, image: BuiltImage, mounted_repository: Path):
    container = start_container(engine, image, models=mounted_repository,
                                env={"HIGHWAY_WORKERS": "2"}, options=HARDENED)
    try:
        probe = container.exec("python", "-m", "server.healthcheck")
        assert (probe.returncode, probe.stdout.split(":")[0]) == (0, "SERVING"), probe.stderr
        if engine.name == "podman":  # the image's own HEALTHCHECK, run by the engine
            assert engine.run("healthcheck", "run", container.name, check=False).returncode == 0

        request = hw.PredictRequest(images=[bytes(28 * 28)] * 2)
        for _ in range(CONNECTIONS):  # each its own connection, so both workers get some
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(container.address, options=options) as channel:
                hw_grpc.ClassifierStub(channel).Predict(request, timeout=30)

        text = metrics_text(container.metrics_port)
        samples = parse(text)
        assert sample(samples, "highway_requests_total", method="Predict", code="OK") == CONNECTIONS
        ready = [line for line in text.splitlines() if line.startswith("highway_worker_ready{")]
        assert len(ready) == 2 and all(line.endswith(" 1.0") for line in ready), ready
        shares = [sample(samples, "highway_worker_requests_total", worker=w) for w in ("0", "1")]
        assert sum(shares) == CONNECTIONS and min(shares) > 0, shares

        engine.run("stop", "-t", "30", container.name, timeout=60)
        state, logs = container.state(), container.logs()
        assert (state["Running"], state["ExitCode"]) == (False, 0), logs
        assert "worker 0 (pid" in logs and "worker 1 (pid" in logs and "Traceback" not in logs
    finally:
        container.remove()
