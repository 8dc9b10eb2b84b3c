"""``--model-control-mode poll``: re-reads the repository every ``--repository-poll-secs``.

Each poll brings every model in line with the disk through the registry: new
versions and models load, changed ones reload, removed ones unload. A poll that
fails as a whole (say the repository folder is briefly gone) is logged and the
next one tries again; the serving models are untouched.
"""

from __future__ import annotations

import asyncio
import logging

from server.errors import ModelLoadError
from server.registry import Registry

log = logging.getLogger(__name__)


class Poller:
    """An asyncio task on the server's loop; ``cycles`` counts the polls completed."""

    def __init__(self, registry: Registry, period_s: float):
        self._registry = registry
        self._period_s = period_s
        self._task: asyncio.Task | None = None
        self.cycles = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="repository-poll")

    async def stop(self) -> None:
        """Ends the polling; a poll in progress is cancelled between two model loads."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            try:
                await self._registry.sync()
            except ModelLoadError as e:
                log.warning("repository poll: %s", e)
            except Exception:  # never let one bad poll end the polling
                log.exception("repository poll failed")
            self.cycles += 1
