"""Container engine helpers for the image tests: build, run, probe, inspect, remove.

Plain functions and classes (no fixtures; those are in conftest.py), driving the
real podman or docker CLI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.channels import Transport
from server.healthcheck import ProbeSettings, probe
from tests.ports import free_ports

log = logging.getLogger("container")

ROOT = Path(__file__).resolve().parents[2]
# One tag per checkout: parallel checkouts sharing one engine's image store must not
# run each other's builds (seen: a build from another checkout retagged between
# this session's build and its `run`).
IMAGE_TAG = f"highway-mnist:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}"
BUILD_TIMEOUT_S = 1800  # a cold build downloads ~100 MB of wheels
SERVING_TIMEOUT_S = 120
SETUP_HINT = "as root: bash ../shared/container/podman-setup.sh (installs podman)"


@dataclass(frozen=True)
class Engine:
    """A container engine CLI (podman or docker)."""

    name: str
    """"podman" or "docker"."""
    path: str
    """The executable."""

    def run(self, *args: str, timeout: float = 120, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """One engine command, output as text; AssertionError with the output if check fails."""
        result = subprocess.run([self.path, *args], capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def build_args(self, tag: str, device: str = "cpu") -> list[str]:
        """``build`` arguments for the repository's Dockerfile."""
        args = ["build", "-t", tag, "--build-arg", f"DEVICE={device}"]
        if self.name == "podman":
            # OCI-format images drop HEALTHCHECK; the Docker format keeps it.
            args += ["--format", "docker"]
        else:
            args += ["--progress", "plain"]
        return [*args, str(ROOT)]


def find_engine() -> Engine | None:
    """podman if installed, else docker, else None."""
    for name in ("podman", "docker"):
        path = shutil.which(name)
        if path:
            return Engine(name, path)
    return None


def stream_build(engine: Engine, args: Sequence[str], timeout: float) -> tuple[int, list[str]]:
    """Runs a build, logging its step lines as they come; (exit code, all output lines)."""
    proc = subprocess.Popen([engine.path, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, proc.kill)  # a hung download must not hang CI
    timer.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if "STEP" in line or line.startswith("#") or "Successfully" in line:
                log.info("build: %s", line.rstrip()[:160])
        code = proc.wait()
    finally:
        timer.cancel()
    return code, lines


@dataclass
class BuiltImage:
    """The image built for this session, and what it cost."""

    tag: str
    build_seconds: float
    size_bytes: int
    inspect: dict = field(repr=False)


def build_image(engine: Engine, tag: str = IMAGE_TAG) -> BuiltImage:
    """Builds the CPU image from the checkout (layer cache allowed) and inspects it."""
    log.info("building %s with %s from %s", tag, engine.name, ROOT)
    start = time.monotonic()
    code, lines = stream_build(engine, engine.build_args(tag), BUILD_TIMEOUT_S)
    seconds = time.monotonic() - start
    if code != 0:
        tail = "\n".join(lines[-60:])
        pytest.fail(f"{engine.name} build exited {code} after {seconds:.0f} s:\n{tail}")
    data = json.loads(engine.run("image", "inspect", tag).stdout)[0]
    size = int(data.get("Size") or 0)
    log.info("built %s in %.1f s; %.0f MB", tag, seconds, size / 1e6)
    return BuiltImage(tag, seconds, size, data)


def free_port() -> int:
    """A TCP port free on all interfaces right now (containers share the host network)."""
    return free_ports(1)[0]


def readable_copy(source: Path, destination: Path) -> Path:
    """Copies a model repository so the image's non-root user can read it when mounted."""
    shutil.copytree(source, destination)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return destination


@dataclass
class Container:
    """A started container of the image, on the host network."""

    engine: Engine
    name: str
    grpc_port: int
    metrics_port: int
    started_at: float
    serving_seconds: float = 0.0
    """From `run` to the first SERVING answer."""
    transport: Transport = field(default_factory=Transport)
    """How the host reaches its gRPC port (plain, or TLS with the mounted certificates)."""

    @property
    def address(self) -> str:
        """host:port of its gRPC endpoint, from the host."""
        return f"127.0.0.1:{self.grpc_port}"

    def state(self) -> dict:
        """The engine's State object (Running, ExitCode, ...)."""
        return json.loads(self.engine.run("inspect", self.name).stdout)[0]["State"]

    def logs(self) -> str:
        """Everything the container printed (stdout and stderr)."""
        result = self.engine.run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Runs a command inside the container, as the image's user; never raises."""
        return self.engine.run("exec", self.name, *command, check=False)

    def wait_serving(self, timeout: float = SERVING_TIMEOUT_S) -> None:
        """Polls grpc.health.v1 from the host until SERVING; fails early if the container dies."""
        deadline = time.monotonic() + timeout
        settings = ProbeSettings(address=self.address, timeout=1.0, transport=self.transport)
        last = ""
        while time.monotonic() < deadline:
            result = probe(settings)
            if result.healthy:
                self.serving_seconds = time.monotonic() - self.started_at
                log.info("%s SERVING %.2f s after run", self.name, self.serving_seconds)
                return
            last = result.message
            if not self.state().get("Running"):
                pytest.fail(f"container {self.name} exited before SERVING:\n{self.logs()}")
            time.sleep(0.2)
        pytest.fail(f"container {self.name} not SERVING after {timeout:.0f} s ({last}):\n"
                    f"{self.logs()}")

    def remove(self) -> None:
        """Kills and removes it (no-op if gone)."""
        self.engine.run("rm", "-f", self.name, check=False)


def start_container(engine: Engine, image: BuiltImage, models: Path | None = None,
                    env: dict[str, str] | None = None, wait: bool = True,
                    options: Sequence[str] = (), transport: Transport | None = None
                    ) -> Container:
    """Runs the image detached on free ports (a repository mounted at /models if given).

    ``options`` go to ``run`` as they are (e.g. ``--read-only``).
    """
    grpc_port, metrics_port = free_ports(2)
    name = f"highway-test-{os.getpid()}-{grpc_port}"
    args = ["run", "-d", "--name", name, "--network", "host",
            "-e", f"HIGHWAY_GRPC_PORT={grpc_port}", "-e", f"HIGHWAY_METRICS_PORT={metrics_port}"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    if models is not None:
        args += ["-v", f"{models}:/models:ro"]
    args += list(options)
    started_at = time.monotonic()
    engine.run(*args, image.tag)
    container = Container(engine, name, grpc_port, metrics_port, started_at,
                          transport=transport or Transport())
    if wait:
        try:
            container.wait_serving()
        except BaseException:
            container.remove()
            raise
    return container
