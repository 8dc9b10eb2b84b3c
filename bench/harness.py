"""What the benchmark and the reliability tests share: server subprocesses, requests, checks.

Both the real server (``python -m server``) and the naive baseline
(``python -m bench.naive``) run as their own processes, as in production, so
their CPU and memory can be read from ``/proc``, the load generator's GIL is
never theirs, and a crash, a hang or an exit code is seen as an operator sees it.
Requests are built from raw bytes and answers checked here, once, for both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from highway_core.facts import INPUT_NAME, NUM_CLASSES, PROBABILITIES
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from server.channels import Transport

SERVING = health_pb2.HealthCheckResponse.SERVING
METHODS = {
    "Predict": "/highway.v1.Classifier/Predict",
    "ModelInfer": "/inference.GRPCInferenceService/ModelInfer",
}
STREAMS = {
    "PredictStream": "/highway.v1.Classifier/PredictStream",
    "ModelStreamInfer": "/inference.GRPCInferenceService/ModelStreamInfer",
}
"""Bidirectional streams: the same requests as their unary twin (``UNARY[api]``)."""
UNARY = {"PredictStream": "Predict", "ModelStreamInfer": "ModelInfer"}


def request_bytes(api: str, model: str, images: np.ndarray) -> bytes:
    """A serialized request for ``images`` (uint8 [N, 28, 28]) on the given API."""
    api = UNARY.get(api, api)
    if api == "Predict":
        return hw.PredictRequest(model_name=model,
                                 images=[img.tobytes() for img in images]).SerializeToString()
    request = kserve.ModelInferRequest(model_name=model)
    request.inputs.add(name=INPUT_NAME, datatype="UINT8", shape=images.shape)
    request.raw_input_contents.append(np.ascontiguousarray(images).tobytes())
    return request.SerializeToString()


def stream_error(api: str, answer: bytes) -> str | None:
    """The status code name of a failed answer on a stream (None: it succeeded)."""
    if api == "PredictStream":
        response = hw.PredictStreamResponse.FromString(answer)
        return response.error.code if response.HasField("error") else None
    message = kserve.ModelStreamInferResponse.FromString(answer).error_message
    return message.split(":", 1)[0] if message else None


def check_answer(api: str, answer: bytes, n: int) -> None:
    """Raises ValueError unless ``answer`` holds n probability rows summing to 1."""
    if api in STREAMS:
        if (code := stream_error(api, answer)) is not None:
            raise ValueError(f"{api} answered {code}")
        if api == "PredictStream":
            answer = hw.PredictStreamResponse.FromString(answer).response.SerializeToString()
        else:
            answer = kserve.ModelStreamInferResponse.FromString(
                answer).infer_response.SerializeToString()
        api = UNARY[api]
    if api == "Predict":
        response = hw.PredictResponse.FromString(answer)
        rows = np.array([list(p.probabilities) for p in response.predictions], dtype=np.float32)
    else:
        response = kserve.ModelInferResponse.FromString(answer)
        index = [o.name for o in response.outputs].index(PROBABILITIES)
        rows = np.frombuffer(response.raw_output_contents[index], dtype="<f4")
        rows = rows.reshape(-1, NUM_CLASSES)
    if rows.shape != (n, NUM_CLASSES) or not np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(f"{api} answered {rows.shape} probabilities for {n} images")


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server subprocess; ``target`` is its gRPC address once :meth:`wait_ready` returns."""

    def __init__(self, name: str, args: list[str], port: int, metrics_port: int | None = None,
                 log_path: Path | None = None, transport: Transport | None = None):
        self.name = name
        self.transport = transport or Transport()
        """How clients reach it: plain, or TLS with the CA that signed its certificate."""
        self.metrics_port = metrics_port
        self.target = f"127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        env = dict(os.environ, GRPC_VERBOSITY="ERROR")
        self.proc = subprocess.Popen([sys.executable, *args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, method: str, payload: bytes, timeout: float = 180) -> None:
        """Sends ``payload`` until it is answered OK; RuntimeError if the process dies."""
        with self.transport.channel(self.target) as channel:
            call = channel.unary_unary(method)
            self._poll(lambda: call(payload, timeout=5) is not None, "ready", timeout)

    def wait_serving(self, timeout: float = 180) -> None:
        """Polls grpc.health.v1 until SERVING (under --workers: every worker loaded)."""
        request = health_pb2.HealthCheckRequest()
        with self.transport.channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            self._poll(lambda: stub.Check(request, timeout=5).status == SERVING, "SERVING",
                       timeout)

    def _poll(self, answered: Callable[[], bool], what: str, timeout: float) -> None:
        """Calls ``answered`` every 0.1 s until it is true (an RpcError counts as not yet);
        RuntimeError, with the log's tail, if the process dies or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}"
                                   f"{self._tail()}")
            try:
                if answered():
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} server not {what} after {timeout:.0f} s"
                                   f"{self._tail()}")
            time.sleep(0.1)

    def _tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
        return ": " + " | ".join(lines) if lines else ""

    def pids(self) -> list[int]:
        """The server process and its children (the workers under --workers; Linux /proc)."""
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *map(int, children)]

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server and its children have used (Linux /proc)."""
        total = None
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total = (total or 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")
        return total

    def rss_mb(self) -> float | None:
        """Resident memory now of the server and its children, in MB (Linux /proc)."""
        total = None
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total = (total or 0.0) + int(line.split()[1]) / 1024
            except OSError:
                pass
        return total

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait, then SIGKILL if needed; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.proc.returncode


def real_server(repository: Path, device: str, threads: int, extra: list[str],
                log_path: Path | None, tls_folder: Path | None = None) -> ServerProcess:
    """``python -m server`` on free gRPC and metrics ports, bound to 127.0.0.1.

    With ``tls_folder`` it speaks TLS with a throw-away certificate written there.
    """
    port, metrics = free_port(), free_port()
    args = ["-m", "server", "--model-repository", str(repository), "--host", "127.0.0.1",
            "--grpc-port", str(port), "--metrics-port", str(metrics), "--device", device,
            "--intra-op-threads", str(threads), "--log-level", "WARNING", *extra]
    transport = None
    if tls_folder is not None:
        from bench.certs import make_pki

        pki = make_pki(tls_folder)
        args += ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)]
        transport = Transport(tls=True, ca=pki.ca, server_name="localhost")
    return ServerProcess("real", args, port, metrics, log_path, transport)


def naive_server(model: Path, device: str, threads: int, workers: int,
                 log_path: Path | None) -> ServerProcess:
    """``python -m bench.naive`` on a free port."""
    port = free_port()
    args = ["-m", "bench.naive", "--model", str(model), "--port", str(port),
            "--device", device, "--intra-op-threads", str(threads), "--workers", str(workers)]
    return ServerProcess("naive", args, port, None, log_path)


def floor_server(log_path: Path | None) -> ServerProcess:
    """``python -m bench.floor`` (gRPC with no model) on a free port."""
    port = free_port()
    return ServerProcess("floor", ["-m", "bench.floor", "--port", str(port)], port, None,
                         log_path)
