"""Start-up and shutdown of the real ``python -m server`` process, and its failures."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.highway.v1 import classifier_pb2 as hw
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from server.errors import StartupError
from tests.polling import sample, scrape, wait_until
from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str, log=subprocess.PIPE, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "HIGHWAY_HOST": "127.0.0.1", "HIGHWAY_METRICS_PORT": "-1", **env}
    return subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT, env=environ,
                            stdout=log, stderr=log, text=True)


def wait_serving(channel: grpc.Channel, timeout: float = 120) -> None:
    """Waits for grpc.health.v1 SERVING: the port opens before the model is loaded."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=10, wait_for_ready=True)
        if answer.status == health_pb2.HealthCheckResponse.SERVING:
            return
        time.sleep(0.05)
    raise TimeoutError("the server never reported SERVING")


def fails_with(*args: str, **env: str) -> tuple[int, list[str]]:
    proc = serve(*args, **env)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


def test_device_cuda_without_cuda_fails_with_one_clear_line(tiny_repository):
    code, lines = fails_with("--model-repository", str(tiny_repository), "--device", "cuda",
                             "--grpc-port", "0")
    if code == 0:  # pragma: no cover - a machine with a working GPU
        pytest.skip("CUDA is available here")
    assert code != 0
    assert len(lines) == 1, lines
    assert "--device cuda" in lines[0] and "CUDA is not active" in lines[0]


def test_corrupt_model_fails_with_one_line_naming_the_file(tiny_repository, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repository, repo)
    model = repo / "highway_mnist" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])  # truncated
    code, lines = fails_with("--model-repository", str(repo), "--grpc-port", "0",
                             "--device", "cpu", HIGHWAY_LOG_LEVEL="WARNING")
    assert code == 1
    assert len(lines) == 1, lines
    assert "model.onnx" in lines[0] and "cannot load model" in lines[0]


def test_missing_repository_and_bad_flags_fail_in_one_line(tmp_path):
    code, lines = fails_with("--model-repository", str(tmp_path / "nowhere"), "--grpc-port", "0")
    assert code == 1 and len(lines) == 1 and "not found" in lines[0]
    code, lines = fails_with("--device", "tpu", "--grpc-port", "0")
    assert code == 2 and len(lines) == 1 and "--device" in lines[0]


def test_sigterm_with_requests_in_flight_answers_all_and_exits_0(flags_repository,
                                                                  fixture_mnist, tmp_path):
    port, metrics_port = free_ports(2)
    log = (tmp_path / "server.log").open("w")  # a file, not a pipe nobody reads
    # One image per run, so each 3000-image request takes a while.
    proc = serve("--model-repository", str(flags_repository), "--grpc-port", str(port),
                 "--device", "cpu", "--max-batch-size", "1", "--max-queue", "100000",
                 log=log, HIGHWAY_INTRA_OP_THREADS="1", HIGHWAY_METRICS_PORT=str(metrics_port))
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        wait_serving(channel)
        stub = hw_grpc.ClassifierStub(channel)
        images = [im.tobytes() for im in fixture_mnist.x_train[:3000]]
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(stub.Predict, hw.PredictRequest(images=images), timeout=120)
                     for _ in range(4)]
            wait_until(lambda: sample(scrape(metrics_port), "highway_inflight_requests") >= 4,
                       "4 requests in flight", timeout=30)
            proc.send_signal(signal.SIGTERM)
            answers = [c.result() for c in calls]
        assert [len(a.predictions) for a in answers] == [3000] * 4
        assert proc.wait(timeout=60) == 0
        with pytest.raises(grpc.RpcError) as late:
            stub.Predict(hw.PredictRequest(images=[bytes(784)]), timeout=5)
        assert late.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        log.close()
        print((tmp_path / "server.log").read_text())  # shown when the test fails


def test_busy_port_is_a_startup_error_not_a_shared_port(start_server, base_settings):
    first = start_server()
    with pytest.raises(StartupError, match="cannot listen"):
        start_server(grpc_port=first.app.port)
