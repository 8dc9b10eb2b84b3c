"""Fixtures for the server tests: real in-process servers on free ports, real stubs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.settings import Settings
from tests.server.helpers import Running, launch


@pytest.fixture(scope="session")
def base_settings(flags_repository) -> Settings:
    """Settings for a test server: the tiny exported model (batching from these settings),
    free ports, loopback only."""
    return Settings(model_repository=flags_repository, host="127.0.0.1", grpc_port=0,
                    metrics_port=0, device="cpu", grace_period_s=10.0, intra_op_threads=1)


@pytest.fixture
def start_server(base_settings):
    """Factory: start_server(**setting_overrides) → Running; all stopped after the test."""
    started: list[Running] = []

    def start(load: bool = True, **overrides) -> Running:
        running = launch(replace(base_settings, **overrides), load=load)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


@pytest.fixture(scope="module")
def shared_server(base_settings):
    """One server for a whole module of tests that only read (metrics not asserted)."""
    running = launch(base_settings)
    yield running
    running.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A throw-away CA, server and client certificates (see bench/certs.py)."""
    from bench.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))
