"""The supervisor's small parts (server/workers.py, worker_process.py): worker settings, exit
statuses, the port."""

from __future__ import annotations

import socket

import pytest

from server.errors import StartupError
from server.settings import Settings
from server.worker_process import cores, worker_settings
from server.workers import describe, reserve_port


def test_each_worker_gets_the_shared_port_no_metrics_port_and_its_share_of_the_cores():
    settings = Settings(workers=2, grpc_port=0, metrics_port=8002)
    worker = worker_settings(settings, 41234)
    assert (worker.grpc_port, worker.metrics_port) == (41234, -1)
    assert worker.intra_op_threads == max(1, cores() // 2)
    assert worker_settings(Settings(workers=64), 1).intra_op_threads >= 1


def test_explicit_intra_op_threads_are_kept():
    assert worker_settings(Settings(workers=2, intra_op_threads=3), 1).intra_op_threads == 3


@pytest.mark.parametrize(("exitcode", "text"), [
    (0, "exit status 0"), (1, "exit status 1"), (-9, "killed by SIGKILL"),
    (-15, "killed by SIGTERM")])
def test_exit_statuses_are_described_as_an_operator_reads_them(exitcode, text):
    assert describe(exitcode) == text


def test_port_0_becomes_one_number_that_a_second_reuseport_socket_can_share():
    with reserve_port("127.0.0.1", 0) as reserved:
        port = reserved.getsockname()[1]
        assert port > 0
        with socket.socket() as worker:  # what each worker's gRPC server does
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()


def test_a_port_held_by_another_server_is_refused_in_one_line():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(StartupError, match=rf"^cannot listen on 127.0.0.1:{port} "
                                               r"\(port in use\?\)$"):
            reserve_port("127.0.0.1", port)


def test_an_unknown_host_is_refused_in_one_line():
    with pytest.raises(StartupError, match="^cannot listen on no-such-host.invalid:0: "):
        reserve_port("no-such-host.invalid", 0)
