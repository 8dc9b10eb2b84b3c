"""Fixtures for the reliability tests: one shared real server for the non-destructive ones."""

from __future__ import annotations

import pytest

from tests.reliability.support import running_server


@pytest.fixture(scope="session")
def server_log(tmp_path_factory):
    """Where the shared server writes its log (stdout + stderr)."""
    return tmp_path_factory.mktemp("shared_server") / "server.log"


@pytest.fixture(scope="session")
def shared_server(tiny_repository, server_log):
    """``python -m server`` on the tiny repository, default limits, free ports.

    Tests that use it must leave it serving; each ends by checking it still does.
    """
    with running_server(tiny_repository, log=server_log) as server:
        yield server

