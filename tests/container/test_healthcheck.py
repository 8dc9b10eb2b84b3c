"""The image's grpc.health.v1 probe (server/healthcheck.py) against real servers.

Not marked ``container``: these run in the default suite, against the real
server in-process (before and after its models load) and as a real CLI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from server.background import BackgroundServer
from server.healthcheck import ProbeSettings, default_address, main, parse_args, probe
from server.settings import Settings
from tests.container.containers import ROOT, free_port

SERVICES = ("", "highway.v1.Classifier", "inference.GRPCInferenceService")


def settings(repository: Path) -> Settings:
    return Settings(model_repository=repository, host="127.0.0.1", grpc_port=0, metrics_port=-1,
                    device="cpu", grace_period_s=5.0, intra_op_threads=1)


@pytest.fixture(scope="module")
def serving(tiny_repository):
    """A real server with its model loaded: every health service SERVING."""
    server = BackgroundServer(settings(tiny_repository), CollectorRegistry()).start()
    yield f"127.0.0.1:{server.app.port}"
    server.stop()


@pytest.fixture
def loading(tmp_path):
    """A real server bound but not loaded (as while it warms up): NOT_SERVING."""
    server = BackgroundServer(settings(tmp_path), CollectorRegistry(), load=False).start()
    yield f"127.0.0.1:{server.app.port}"
    server.stop()


@pytest.mark.parametrize("service", SERVICES)
def test_serving_server_is_healthy_for_each_registered_service(serving, service):
    result = probe(ProbeSettings(address=serving, service=service))
    assert result.healthy
    assert result.message == f"SERVING: {serving} service {service!r}"


def test_server_still_loading_is_not_serving(loading):
    result = probe(ProbeSettings(address=loading))
    assert not result.healthy
    assert result.message.startswith("NOT_SERVING:")


def test_unregistered_service_is_reported_as_unknown(serving):
    result = probe(ProbeSettings(address=serving, service="no.such.Service"))
    assert not result.healthy
    assert result.message.startswith("SERVICE_UNKNOWN:") and "no.such.Service" in result.message


def test_nothing_listening_is_unreachable_within_the_timeout():
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = probe(ProbeSettings(address=address, timeout=0.5))
    assert not result.healthy
    assert result.message == f"UNREACHABLE: no answer from {address} service '' within 0.5s"
    assert time.monotonic() - start < 5


def test_cli_exit_codes_and_one_line_output(serving, capsys):
    assert main(["--address", serving]) == 0
    assert main(["--address", serving, "--service", "nope", "--timeout", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["SERVING", "SERVICE_UNKNOWN"]


def test_cli_rejects_a_non_positive_timeout_with_usage_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--timeout", "0"], {})
    assert exit_info.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


def test_default_address_follows_the_servers_port_variable():
    assert default_address({}) == "localhost:8001"
    assert default_address({"HIGHWAY_GRPC_PORT": "9101"}) == "localhost:9101"
    assert parse_args([], {"HIGHWAY_GRPC_PORT": "9101"}).address == "localhost:9101"
    assert parse_args(["--address", "h:1"], {"HIGHWAY_GRPC_PORT": "9101"}).address == "h:1"


def test_module_runs_as_a_command_with_the_port_from_the_environment(serving):
    port = serving.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "server.healthcheck"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30,
                            env={"HIGHWAY_GRPC_PORT": port, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"SERVING: localhost:{port} service ''\n"
