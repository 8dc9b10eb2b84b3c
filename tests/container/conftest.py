"""Fixtures for the image tests: a container engine, the CPU image, running containers.

Tests marked ``container`` build the real image from the Dockerfile and run it
with podman or docker (host network, free ports). They run only when selected
(``pytest -m container``), so the default suite never builds images; where no
engine exists they skip with a message, except under CI (``$CI`` set), where
that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.containers import (
    SETUP_HINT,
    BuiltImage,
    Container,
    Engine,
    build_image,
    find_engine,
    readable_copy,
    start_container,
)


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The container engine; skip (fail under CI) when there is none."""
    found = find_engine()
    if found is None:
        message = f"neither podman nor docker is installed; {SETUP_HINT}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the container tests: {message}")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def image(engine: Engine) -> BuiltImage:
    """The CPU image, built once per session from the checkout."""
    return build_image(engine)


@pytest.fixture
def run_container(engine: Engine, image: BuiltImage) -> Iterator:
    """Factory: run_container(models=None | repository path, env=None) → a SERVING Container.

    Every container started is removed after the test.
    """
    started: list[Container] = []

    def run(models: Path | None = None, env: dict[str, str] | None = None,
            wait: bool = True) -> Container:
        container = start_container(engine, image, models, env, wait)
        started.append(container)
        return container

    yield run
    for container in started:
        container.remove()


@pytest.fixture(scope="session")
def mounted_repository(tiny_repository, tmp_path_factory) -> Path:
    """The tiny test repository, readable by the image's user, for a /models mount."""
    return readable_copy(tiny_repository, tmp_path_factory.mktemp("mount") / "models")
