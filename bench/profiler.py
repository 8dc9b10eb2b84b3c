"""The server's CPU seconds over one measuring window, and optionally a py-spy flame graph."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from bench.harness import ServerProcess
from bench.load import Scenario

log = logging.getLogger("bench")


class Profiler:
    """The server's CPU seconds over one measuring window, and a py-spy flame graph of it
    (when a folder is given and py-spy is installed)."""

    def __init__(self, folder: Path | None, server: ServerProcess, sc: Scenario, seconds: float):
        self.server = server
        self.cpu: list[float | None] = []
        self.proc: subprocess.Popen | None = None
        self.command: list[str] | None = None
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if folder is None or not Path(spy).exists():
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.out = folder / f"{sc.api}-{sc.images}img-c{sc.concurrency}.svg"
        self.spy = spy
        self.command = [spy, "record", "--pid", str(server.proc.pid), "--duration",
                        str(max(1, int(seconds))), "--rate", "200", "--nonblocking",
                        "--threads", "-o", str(self.out)]

    def start(self) -> None:
        self.cpu.append(self.server.cpu_seconds())
        if self.command is not None:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.cpu.append(self.server.cpu_seconds())

    def wait(self) -> tuple[float | None, float | None]:
        """Waits for py-spy; returns the server's CPU seconds at window start and end."""
        if self.proc is not None:
            if self.proc.wait(60) != 0:
                log.info("py-spy failed (exit %s)", self.proc.returncode)
            elif self.out.exists():  # the title names the command: no machine paths in it
                self.out.write_text(self.out.read_text().replace(self.spy, "py-spy"))
        return self.cpu[0], self.cpu[1]
