"""Watching a running server from outside: its /metrics scraped and parsed, and waits
that end.

One home for what the server, reliability and container tests all do: they read
the real exposition over HTTP (as Prometheus would) and parse it with
prometheus_client's own parser, and every wait for a server state has a deadline
and fails saying what never happened, instead of hanging the suite.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_text(port: int, host: str = "127.0.0.1") -> str:
    """The exposition text of ``http://host:port/metrics``."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def parse(text: str) -> Samples:
    """Every sample of an exposition as {(name, sorted label pairs): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(port: int, host: str = "127.0.0.1") -> Samples:
    """Every sample of the server's /metrics, parsed."""
    return parse(metrics_text(port, host))


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0.0 when absent, as a counter that never moved)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0,
               interval: float = 0.01) -> None:
    """Polls ``condition`` until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(interval)
