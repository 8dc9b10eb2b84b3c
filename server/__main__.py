"""``python -m server`` / ``highway-serve``: serve the model repository until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys

from server.errors import StartupError
from server.fleet import Fleet
from server.settings import Settings, from_args

log = logging.getLogger("server")


async def serve(settings: Settings, fleet: Fleet | None = None) -> None:
    """Runs until a signal, then drains gracefully (``fleet``: one worker of several)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from server.app import App  # here: the --workers supervisor never needs gRPC or ORT

    app = App(settings, fleet=fleet)
    try:
        await app.bind()
        await app.load()
    except BaseException:
        if app.server is not None:
            await app.server.stop(None)
        raise
    await stop.wait()
    log.info("signal received: draining")
    await app.stop(close_transport=False)
    # Every accepted call is answered. Exit now, before grpcio's own shutdown can
    # answer calls still arriving with CANCELLED instead of UNAVAILABLE.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 after a clean shutdown, 1 when the server cannot start, 2 bad flags,
    3 when one of several workers died (server/workers.py)."""
    try:
        settings = from_args(argv)
    except ValueError as e:
        print(f"highway-serve: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints every thread's stack
    try:
        if settings.workers > 1:
            from server.workers import Supervisor

            return Supervisor(settings).run()
        asyncio.run(serve(settings))
    except StartupError as e:
        print(f"highway-serve: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
