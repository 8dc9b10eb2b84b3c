"""The Docker image, built from the Dockerfile and run: health, both APIs, metrics, user, stop.

Marked ``container``: run with ``pytest -m container tests/container`` (podman or
docker needed). One container (the tiny test repository mounted at /models,
read-only root, no capabilities) serves the read-only tests; the stop and
shipped-model tests start their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from export.parity import onnx_outputs
from protos.highway.v1 import classifier_pb2 as hw
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from server.healthcheck import ProbeSettings, probe
from tests.container.containers import ROOT, BuiltImage, Container, Engine, start_container
from tests.polling import metrics_text, parse, sample, scrape

pytestmark = pytest.mark.container

MODEL = "highway_mnist"
N = 64  # real MNIST test images per request (one full batch)
UID = "10001"
# What the README's Kubernetes example asks for: no writable root, no capabilities.
HARDENED = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


@pytest.fixture(scope="module")
def served(engine: Engine, image: BuiltImage, mounted_repository: Path):
    """One hardened container serving the tiny test repository, for read-only tests."""
    container = start_container(engine, image, models=mounted_repository, options=HARDENED)
    yield container
    container.remove()


@pytest.fixture(scope="module")
def offline(tiny_repository: Path, fixture_mnist):
    """First N fixture test images and the tiny model's outputs from ONNX Runtime on the host."""
    images = fixture_mnist.x_test[:N]
    probabilities, gates = onnx_outputs(tiny_repository / MODEL / "1" / "model.onnx", images)
    return images, probabilities, gates


# tritonclient registers its own ``inference.*`` protobuf messages, which clash with
# ours in one process; so Triton's client runs in a subprocess, as a user's would.
TRITON_SCRIPT = r"""
import json, sys
import numpy as np
import tritonclient.grpc as triton

address, n = sys.argv[1], int(sys.argv[2])
images = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(n, 28, 28)
client = triton.InferenceServerClient(url=address)
request = triton.InferInput("images", list(images.shape), "UINT8")
request.set_data_from_numpy(images)
result = client.infer("highway_mnist", [request], outputs=[
    triton.InferRequestedOutput("probabilities"), triton.InferRequestedOutput("gate_activity")])
print(json.dumps({
    "ready": [client.is_server_live(), client.is_server_ready(),
              client.is_model_ready("highway_mnist")],
    "probabilities": result.as_numpy("probabilities").tolist(),
    "gate_activity": result.as_numpy("gate_activity").tolist(),
}))
"""


def classifier(container: Container) -> hw_grpc.ClassifierStub:
    return hw_grpc.ClassifierStub(grpc.insecure_channel(container.address))


def test_image_config_runs_non_root_exposes_ports_and_has_a_healthcheck(image: BuiltImage):
    config = image.inspect["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert set(config["ExposedPorts"]) == {"8001/tcp", "8002/tcp"}
    assert config["StopSignal"] == "SIGTERM"
    assert "HIGHWAY_MODEL_REPOSITORY=/models" in config["Env"]
    # docker keeps the healthcheck under Config, podman beside it.
    healthcheck = config.get("Healthcheck") or image.inspect.get("Healthcheck")
    assert healthcheck["Test"][:4] == ["CMD", "python", "-m", "server.healthcheck"]


def test_image_holds_the_server_but_no_tensorflow_or_training_code(served: Container):
    result = served.exec("python", "-c", "import importlib.util as u; print(*(u.find_spec(m) is "
                         "None for m in ('tensorflow', 'keras', 'training', 'export', 'server')))")
    assert result.stdout.split() == ["True", "True", "True", "True", "False"], result.stderr


def test_image_offers_only_commands_that_run(served: Container):
    """highway-train and highway-export would die with ModuleNotFoundError here: the build
    drops them (scripts/prune_console_scripts.py); every command left answers --help."""
    listed = served.exec("python", "-c", "from importlib.metadata import distribution as d; "
                         "print(*sorted(e.name for e in d('highway-mnist').entry_points "
                         "if e.group == 'console_scripts'))")
    commands = listed.stdout.split()
    assert commands == ["highway-serve"], listed.stderr
    for command in commands:
        result = served.exec(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
    assert served.exec("sh", "-c", "command -v highway-train highway-export").returncode != 0


def test_server_process_runs_as_the_non_root_user(served: Container):
    assert served.exec("id", "-u").stdout.strip() == UID
    status = served.exec("cat", "/proc/1/status").stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == [UID] * 4  # real, effective, saved, filesystem
    assert "highway-serve" in served.exec("cat", "/proc/1/cmdline").stdout


def test_healthcheck_probe_inside_the_container_says_serving(served: Container, engine: Engine):
    result = served.exec("python", "-m", "server.healthcheck")
    assert (result.returncode, result.stdout.split(":")[0]) == (0, "SERVING"), result.stderr
    if engine.name == "podman":
        # The image's own HEALTHCHECK, run by the engine.
        assert engine.run("healthcheck", "run", served.name, check=False).returncode == 0
    assert probe(ProbeSettings(address=served.address, service="highway.v1.Classifier")).healthy


def test_predict_from_the_host_matches_onnx_runtime_on_real_mnist(served: Container, offline):
    images, probabilities, gates = offline
    response = classifier(served).Predict(hw.PredictRequest(
        images=[im.tobytes() for im in images], return_gate_activity=True), timeout=30)
    served_probabilities = np.array([list(p.probabilities) for p in response.predictions])
    served_gates = np.array([list(p.gate_activity) for p in response.predictions])
    assert [p.digit for p in response.predictions] == probabilities.argmax(1).tolist()
    np.testing.assert_allclose(served_probabilities, probabilities, atol=1e-5)
    np.testing.assert_allclose(served_gates, gates, atol=1e-5)


def test_tritonclient_model_infer_from_the_host_matches_onnx_runtime(served: Container, offline):
    images, probabilities, gates = offline
    result = subprocess.run([sys.executable, "-c", TRITON_SCRIPT, served.address, str(len(images))],
                            input=images.tobytes(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    answer = json.loads(result.stdout)
    assert answer["ready"] == [True, True, True]
    np.testing.assert_allclose(np.array(answer["probabilities"]), probabilities, atol=1e-5)
    np.testing.assert_allclose(np.array(answer["gate_activity"]), gates, atol=1e-5)


def test_no_gpu_falls_back_to_cpu_and_says_so(served: Container):
    info = classifier(served).GetModelInfo(hw.GetModelInfoRequest(), timeout=10)
    assert info.execution_provider == "CPUExecutionProvider"
    assert "CUDA not active" in served.logs() and "using CPUExecutionProvider" in served.logs()


def test_metrics_endpoint_counts_the_requests(served: Container, offline):
    before = sample(scrape(served.metrics_port), "highway_requests_total", method="Predict",
                    code="OK")
    images = offline[0][:3]
    stub = classifier(served)
    for _ in range(2):
        stub.Predict(hw.PredictRequest(images=[im.tobytes() for im in images]), timeout=30)
    text = metrics_text(served.metrics_port)
    samples = parse(text)
    assert sample(samples, "highway_requests_total", method="Predict", code="OK") == before + 2
    assert sample(samples, "highway_model_info", model=MODEL, version="1",
                  provider="CPUExecutionProvider") == 1.0
    assert "highway_request_duration_seconds_bucket" in text


def test_sigterm_drains_and_exits_zero(run_container, mounted_repository: Path,
                                       engine: Engine, offline):
    container = run_container(models=mounted_repository)
    images = offline[0][:2]
    classifier(container).Predict(hw.PredictRequest(images=[im.tobytes() for im in images]))
    # `stop` sends the image's STOPSIGNAL (SIGTERM), then SIGKILL after -t seconds.
    engine.run("stop", "-t", "30", container.name, timeout=60)
    state = container.state()
    logs = container.logs()
    assert (state["Running"], state["ExitCode"]) == (False, 0), logs
    assert "signal received: draining" in logs and "stopped" in logs


def test_missing_model_repository_fails_to_start_with_one_line(run_container, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    container = run_container(models=empty, wait=False)
    container.engine.run("wait", container.name, timeout=120)
    state = container.state()
    errors = [line for line in container.logs().splitlines() if "error" in line.lower()]
    assert state["ExitCode"] == 1 and errors, container.logs()
    assert "Traceback" not in container.logs()


def test_bad_device_build_argument_fails_the_build_with_a_message(engine: Engine, image):
    result = engine.run(*engine.build_args("highway-mnist:bad-device", device="tpu"),
                        timeout=600, check=False)
    assert result.returncode != 0
    assert "DEVICE must be cpu or gpu, not 'tpu'" in result.stdout + result.stderr


@pytest.mark.skipif(not (ROOT / "models" / MODEL).is_dir(),
                    reason="no shipped model repository (models/highway_mnist) in this checkout")
def test_shipped_model_serves_from_the_image_without_a_mount(run_container, fixture_mnist):
    container = run_container()
    info = classifier(container).GetModelInfo(hw.GetModelInfoRequest(), timeout=10)
    onnx_path = ROOT / "models" / MODEL / str(info.version) / "model.onnx"
    images, labels = fixture_mnist.x_test[:500], fixture_mnist.y_test[:500]
    expected, _ = onnx_outputs(onnx_path, images)
    response = classifier(container).Predict(
        hw.PredictRequest(images=[im.tobytes() for im in images]), timeout=60)
    served = np.array([list(p.probabilities) for p in response.predictions])
    np.testing.assert_allclose(served, expected, atol=1e-5)
    # A shipped classifier: most of these real test digits must come out right.
    assert (served.argmax(1) == labels).mean() > 0.9
