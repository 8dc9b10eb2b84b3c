"""The data plane's lookups before loading: a status, not an assertion."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from server import metrics
from server.errors import Unavailable
from server.servicers import Served
from server.settings import Settings


@pytest.fixture
def served(tiny_repository) -> Served:
    """A data plane before any model is loaded."""
    return Served(Settings(model_repository=tiny_repository, device="cpu"),
                  metrics.create(CollectorRegistry()))


def test_lookups_while_loading_are_unavailable_even_under_python_O(served):
    # Served.versions once asserted the repository was there: under -O that check is gone
    # and the call failed with an AttributeError (an INTERNAL status) instead.
    for lookup in (lambda: served.versions("highway_mnist"), lambda: served.all(),
                   lambda: served.get("highway_mnist", 0)):
        with pytest.raises(Unavailable):
            lookup()

