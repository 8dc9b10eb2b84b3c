"""``python -m server`` / ``highway-serve``: serve the model repository until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys

from server.app import App
from server.errors import StartupError
from server.settings import Settings, from_args

log = logging.getLogger("server")


async def serve(settings: Settings) -> None:
    """Runs until a signal, then drains gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = App(settings)
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
    """Exit codes: 0 after a clean shutdown, 1 when the server cannot start, 2 bad flags."""
    try:
        settings = from_args(argv)
    except ValueError as e:
        print(f"highway-serve: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints every thread's stack
    try:
        asyncio.run(serve(settings))
    except StartupError as e:
        print(f"highway-serve: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
