"""``--workers N`` refusals: what stops the server before it serves, in one line each.

A bad worker count, a worker that cannot load its models and a busy port all end
the supervisor with a one-line error and no traceback; see test_workers.py for
the running server.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest


def _serve(*args: str, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "--host", "127.0.0.1",
                           "--metrics-port", "-1", "--device", "cpu", *args],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **environ))


def test_a_worker_that_cannot_start_fails_the_server_in_one_line_each(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.pbtxt").write_text("this is not a config")
    done = _serve("--grpc-port", "0", "--workers", "2", "--model-repository", str(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert re.search(r"highway-serve: error: worker \d: .*not a valid model config", done.stderr)
    assert re.search(r"worker \d \(pid \d+\) exit status 1 while starting", done.stderr)


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_a_bad_worker_count_is_refused_before_anything_starts(value):
    done = _serve(HIGHWAY_WORKERS=value)
    assert done.returncode == 2
    assert done.stderr.startswith("highway-serve: error: --workers")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_busy_port_is_refused_by_the_supervisor(tiny_repository):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve("--grpc-port", str(port), "--workers", "2",
                      "--model-repository", str(tiny_repository))
    assert done.returncode == 1
    assert done.stderr.strip() == f"highway-serve: error: cannot listen on 127.0.0.1:{port} " \
                                  "(port in use?)"
