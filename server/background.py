"""An :class:`~server.app.App` on its own event-loop thread, for code that is not async.

Tests, benchmarks and embedding programs start a real server this way, in process;
``stop`` drains it as SIGTERM does.
"""

from __future__ import annotations

import asyncio
import threading
import time

from prometheus_client import CollectorRegistry

from server.app import App
from server.fleet import Fleet
from server.settings import Settings


class BackgroundServer:
    """Runs an :class:`App` on its own event loop thread (tests, benchmarks, embedding)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None,
                 load: bool = True, fleet: Fleet | None = None):
        self.app = App(settings, registry, fleet)
        self._load = load
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="grpc-server", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._done = asyncio.Event()
        try:
            self.loop.run_until_complete(self.app.bind())
            self._bound.set()
            if self._load:
                self.loop.run_until_complete(self.app.load())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = e
            self._bound.set()
            return
        self.loop.run_until_complete(self._done.wait())
        self.loop.run_until_complete(self.app.stop())

    def start(self, timeout: float = 120) -> BackgroundServer:
        """Binds (and loads, unless told not to); raises what the server raised."""
        self._thread.start()
        self._bound.wait(timeout)
        # Waited for from this thread: a failed load ends the loop, which would then
        # never run a waiting coroutine.
        deadline = time.monotonic() + timeout
        while (self._load and not self.app.calls.ready and self._error is None
               and time.monotonic() < deadline):
            time.sleep(0.01)
        if self._error is not None:
            raise self._error
        return self

    def call(self, coroutine, timeout: float = 120):
        """Runs a coroutine on the server's loop and returns its result."""
        if self._error is not None:
            coroutine.close()
            raise self._error
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, timeout: float = 60) -> None:
        """Graceful stop, as on SIGTERM."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._done.set)
            self._thread.join(timeout)
