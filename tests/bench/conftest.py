"""The benchmark's tests start real servers with the server tests' fixtures."""

from tests.server.conftest import base_settings, start_server  # noqa: F401
