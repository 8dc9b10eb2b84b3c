"""One worker process of ``--workers N``: its settings, and the server it runs.

The supervisor (``server.workers``) starts each worker with multiprocessing's *spawn*
method, so this module is what a fresh interpreter imports to become a worker: today's
server, told about its siblings through a shared ``Fleet``, ended by the kernel when the
supervisor dies.
"""

from __future__ import annotations

import asyncio
import ctypes
import faulthandler
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from server.errors import StartupError
from server.fleet import Fleet
from server.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXIT_CANNOT_START = 1
_PR_SET_PDEATHSIG = 1


def cores() -> int:
    """CPU cores this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_settings(settings: Settings, port: int) -> Settings:
    """One worker's settings: the shared port, no metrics port, its share of the cores."""
    threads = settings.intra_op_threads or max(1, cores() // settings.workers)
    return replace(settings, grpc_port=port, metrics_port=-1, intra_op_threads=threads)


def worker_main(settings: Settings, index: int, states, supervisor: int) -> None:
    """A worker process: today's server, told about its siblings through ``states``."""
    _stop_with(supervisor)
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s %(name)s [worker {index}]: %(message)s")
    faulthandler.register(signal.SIGUSR1)
    from server.__main__ import serve  # not at the top: __main__ leads here via workers.py

    try:
        fleet = Fleet(states, index, Path(os.environ[MULTIPROC_ENV]))
        asyncio.run(serve(settings, fleet))  # exits the process when drained
    except StartupError as e:
        print(f"highway-serve: error: worker {index}: {e}", file=sys.stderr)
        sys.exit(EXIT_CANNOT_START)


def _stop_with(supervisor: int) -> None:
    """Linux: the kernel sends SIGTERM when the supervisor dies, even by SIGKILL.

    Without it an orphaned worker would go on serving the port, unsupervised.
    """
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
