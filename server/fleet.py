"""What every worker of a ``--workers N`` server knows about the others: who is ready.

A health probe (or a ServerReady call) reaches one worker, picked by the
kernel's SO_REUSEPORT hash, yet it asks about the server as a whole: SERVING
must mean that *every* worker can answer. So each worker needs its siblings'
state at the moment it answers, without asking them.

The supervisor allocates one byte per worker in shared memory
(``multiprocessing.RawArray``) before it starts them. Each worker writes only
its own byte; the supervisor writes a worker's byte only after that worker has
died (it cannot say so itself). A single writer per byte at any time needs no
lock, and a probe never waits on another process. Messages over pipes would
carry events; readiness is state, and shared memory is the cheapest way to let
N readers see it.

Each worker copies the fleet's verdict into its gRPC health servicer (and its
ServerReady answer) by polling every :data:`POLL_S`; polling rather than reading
on each Check keeps Check and Watch (the streaming health RPC) telling the same
story. Inference itself is never gated: a loaded worker answers requests even
while a sibling is still loading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableSequence
from pathlib import Path

STARTING, READY, STOPPED = 0, 1, 2
POLL_S = 0.05


class Fleet:
    """One worker's view of the shared readiness array (``states[i]`` is worker i's)."""

    def __init__(self, states: MutableSequence[int], index: int, shared: Path | None = None):
        """``shared``: the folder every worker writes (metric files, statistics)."""
        if not 0 <= index < len(states):
            raise ValueError(f"worker index {index} outside 0..{len(states) - 1}")
        self.states = states
        self.index = index
        self.shared = shared

    def mark(self, state: int) -> None:
        """Publishes this worker's own state (STARTING, READY or STOPPED)."""
        self.states[self.index] = state

    def all_ready(self) -> bool:
        """True iff every worker of the server is READY right now."""
        return all(state == READY for state in self.states[:])

    async def follow(self, publish: Callable[[bool], Awaitable[None]]) -> None:
        """Calls ``publish(all_ready)`` now and on every change, until cancelled."""
        last: bool | None = None
        while True:
            now = self.all_ready()
            if now != last:
                await publish(now)
                last = now
            await asyncio.sleep(POLL_S)
