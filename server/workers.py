"""``--workers N``: N server processes on one gRPC port, one /metrics, one health verdict.

One Python process spends about 150 µs of CPU on every unary call before the
model runs, under one GIL. N processes multiply that budget. Each worker is
today's :class:`server.app.App` with its own ONNX Runtime sessions; they all bind
the same port with SO_REUSEPORT and the kernel spreads *connections* (not calls)
over them.

This process, the supervisor, never holds gRPC state: it reserves the port with
a plain socket (so a busy port fails before anything starts, and port 0 becomes
one number every worker binds), then starts the workers with multiprocessing's
*spawn* method: each is a fresh interpreter, so no gRPC core thread, lock or
poller is inherited through fork. It serves /metrics itself, merged from the
workers' prometheus_client multiprocess files, and watches the workers.

Failure policy: a worker that exits while the server is not shutting down is
logged with its exit status, the others are drained (SIGTERM), and the server
exits 3 (1 if no worker had become ready yet). A restart in place would leave
the pod half-served and hide a crash loop; an orchestrator restarts the whole
server with back-off and counts the restarts where operators look.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.connection import wait

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from server import tls
from server.errors import StartupError
from server.fleet import READY, STOPPED
from server.settings import Settings
from server.worker_process import EXIT_CANNOT_START, MULTIPROC_ENV, worker_main, worker_settings

log = logging.getLogger("server.workers")

EXIT_WORKER_DIED = 3
STOP_MARGIN_S = 15.0  # after the grace period: for the last model runs and the exit itself
POLL_S = 0.1


def metrics_folder() -> str:
    """A fresh folder for the workers' metric files: in /dev/shm when it is writable.

    /dev/shm is memory and stays writable on a read-only root filesystem (the
    hardened container, Kubernetes' readOnlyRootFilesystem); else $TMPDIR or /tmp.
    """
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    try:
        return tempfile.mkdtemp(prefix="highway-metrics-", dir=shm)
    except OSError as e:
        raise StartupError(f"cannot create a folder for the workers' metrics in "
                           f"{shm or tempfile.gettempdir()}: {e.strerror}") from None


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (never listening) to host:port with SO_REUSEPORT, kept while workers run.

    Only listening sockets receive connections, so it takes none; it makes a busy
    port fail here, gives port 0 one number, and keeps the port ours between binds.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} (port in use?)") from None
    return sock


def describe(exitcode: int) -> str:
    """'exit status 1' or 'killed by SIGKILL'."""
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


class Supervisor:
    """Starts ``settings.workers`` workers, serves their merged /metrics, stops them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.states = self.context.RawArray("b", settings.workers)  # all STARTING (0)
        self.workers: list = []
        self.exited: dict[int, int] = {}
        self.exit_code = 0
        self.ever_ready = False
        self._signalled = False
        self._stopping_since: float | None = None
        self._metrics_dir = ""

    def run(self) -> int:
        """Runs until a signal or a worker's death; returns the exit code."""
        s = self.settings
        if s.tls:  # a bad file is one line here, not one per worker
            tls.load(s.tls_cert, s.tls_key, s.tls_client_ca)
        with contextlib.ExitStack() as cleanup:
            reserved = cleanup.enter_context(reserve_port(s.host, s.grpc_port))
            self._metrics_dir = metrics_folder()
            cleanup.callback(shutil.rmtree, self._metrics_dir, ignore_errors=True)
            os.environ[MULTIPROC_ENV] = self._metrics_dir  # the workers inherit it
            metrics_port = self._serve_metrics(cleanup)
            cleanup.callback(self._kill_survivors)
            port = reserved.getsockname()[1]
            self._start(worker_settings(s, port))
            log.info("started %d workers (pids %s) for gRPC on %s:%d, merged metrics on %s",
                     s.workers, ", ".join(str(p.pid) for p in self.workers), s.host, port,
                     f"port {metrics_port}" if metrics_port is not None else "no port")
            self._watch()
        return self.exit_code

    def _serve_metrics(self, cleanup: contextlib.ExitStack) -> int | None:
        """/metrics merged from every worker's files; returns its port (None: off)."""
        s = self.settings
        if s.metrics_port < 0:
            return None
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._metrics_dir)
        host = s.metrics_host or s.host
        try:
            httpd, _thread = start_http_server(s.metrics_port, addr=host, registry=registry)
        except OSError as e:
            raise StartupError(f"cannot serve metrics on {host}:{s.metrics_port}: "
                               f"{e.strerror}") from None
        cleanup.callback(httpd.server_close)
        cleanup.callback(httpd.shutdown)
        return int(httpd.server_port)

    def _kill_survivors(self) -> None:
        """Only reached with live workers if the supervisor itself failed: no orphans."""
        for process in self.workers:
            if process.exitcode is None:
                process.kill()
                process.join()

    def _start(self, settings: Settings) -> None:
        def on_signal(signum, frame) -> None:
            self._signalled = True

        signal.signal(signal.SIGTERM, on_signal)
        # Ignored while starting, and so in the workers from birth: a terminal's Ctrl-C
        # reaches the whole process group, and must not print tracebacks from workers
        # still importing. Once running, a worker drains on SIGINT like on SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for index in range(settings.workers):
            process = self.context.Process(
                target=worker_main, args=(settings, index, self.states, os.getpid()),
                name=f"worker-{index}")
            process.start()
            self.workers.append(process)
        signal.signal(signal.SIGINT, on_signal)

    def _watch(self) -> None:
        grace = self.settings.grace_period_s + STOP_MARGIN_S
        while len(self.exited) < len(self.workers):
            wait([p.sentinel for i, p in enumerate(self.workers) if i not in self.exited],
                 timeout=POLL_S)
            if self._signalled and self._stopping_since is None:  # before reaping: see _reap
                log.info("signal received: draining %d workers", len(self.workers))
                self._stop_all()
            for index, process in enumerate(self.workers):
                if index not in self.exited and process.exitcode is not None:
                    self._reap(index, process)
            if not self.ever_ready and all(state == READY for state in self.states[:]):
                self.ever_ready = True
                log.info("all %d workers ready", len(self.workers))
            if self._stopping_since is not None and time.monotonic() - self._stopping_since > grace:
                for index, process in enumerate(self.workers):
                    if process.exitcode is None:
                        log.error("worker %d (pid %d) still running %.0f s after SIGTERM: "
                                  "killing it", index, process.pid, grace)
                        process.kill()
                        self.exit_code = self.exit_code or EXIT_WORKER_DIED

    def _reap(self, index: int, process) -> None:
        code = process.exitcode
        self.exited[index] = code
        self.states[index] = STOPPED  # it cannot say so itself: siblings turn NOT_SERVING
        mark_process_dead(process.pid, self._metrics_dir)
        stopping = self._stopping_since is not None
        # SIGTERM before a worker installed its handler (still importing): nothing accepted.
        if stopping and code in (0, -signal.SIGTERM):
            log.info("worker %d (pid %d) stopped", index, process.pid)
            return
        when = "while stopping" if stopping else "while serving" if self.ever_ready \
            else "while starting"
        log.error("worker %d (pid %d) %s %s; stopping the server", index, process.pid,
                  describe(code), when)
        if not self.exit_code:
            self.exit_code = EXIT_WORKER_DIED if self.ever_ready else EXIT_CANNOT_START
        self._stop_all()

    def _stop_all(self) -> None:
        if self._stopping_since is not None:  # every live worker has had its SIGTERM
            return
        self._stopping_since = time.monotonic()
        for index, process in enumerate(self.workers):
            if index not in self.exited and process.exitcode is None:
                process.terminate()  # SIGTERM: the worker drains, then exits 0
