"""SIGTERM while clients are sending: accepted requests are answered, later ones UNAVAILABLE.

Eight closed-loop clients keep sending large requests (4,096 images: 64 model
runs each), so several are in the server when the signal arrives. The server logs
how many requests it is finishing; at least that many must be answered (correctly)
after the signal. A request sent before the signal but not yet in a handler may be
refused; every refusal must be UNAVAILABLE, as must every request sent after the
signal; the process exits 0 within the grace period.
"""

from __future__ import annotations

import re
import signal
import threading
import time

import grpc

from bench.harness import check_answer
from tests.reliability.support import channel, infer_bytes, raw_call, running_server

CLIENTS = 8
IMAGES = 4096
MARGIN_S = 0.02  # a request sent this close to the signal may land on either side of it


def _run_and_signal(tiny_repository, log) -> tuple[list, float, float, int]:
    payload = infer_bytes(IMAGES)
    outcomes: list[tuple[float, float, str]] = []  # (sent, ended, code)
    lock = threading.Lock()
    stop = threading.Event()

    def client(ch: grpc.Channel) -> None:
        call = raw_call(ch, "ModelInfer")
        while not stop.is_set():
            sent = time.monotonic()
            try:
                check_answer("ModelInfer", call(payload, timeout=60), IMAGES)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            with lock:
                outcomes.append((sent, time.monotonic(), code))
            if code != "OK":
                time.sleep(0.01)

    with running_server(tiny_repository, "--grace-period-s", "60", "--log-level", "INFO",
                        log=log) as server:
        channels = [channel(server) for _ in range(CLIENTS)]
        threads = [threading.Thread(target=client, args=(ch,)) for ch in channels]
        for t in threads:
            t.start()
        time.sleep(1.5)  # load established: requests queued and running
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        exit_code = server.proc.wait(90)
        exited = time.monotonic()
        time.sleep(0.2)  # a few more attempts against the closed port
        stop.set()
        for t in threads:
            t.join(90)
        for ch in channels:
            ch.close()
    return outcomes, signalled, exited, exit_code


def _rel(outcomes, t0):
    return [(round(s - t0, 3), round(e - t0, 3), c) for s, e, c in outcomes]


def test_sigterm_drains_accepted_requests_refuses_new_ones_and_exits_0(tiny_repository,
                                                                        tmp_path):
    log = tmp_path / "server.log"
    outcomes, signalled, exited, exit_code = _run_and_signal(tiny_repository, log)
    assert exit_code == 0
    assert exited - signalled < 60
    found = re.search(r"finishing (\d+) request", log.read_text())
    pending = int(found.group(1)) if found else 0
    assert pending >= 1, "no request was in progress at SIGTERM: the test proved nothing"

    answered_after = [o for o in outcomes if o[0] < signalled < o[1] and o[2] == "OK"]
    assert len(answered_after) >= pending, (
        f"the server was finishing {pending} requests; {len(answered_after)} were answered: "
        f"{_rel([o for o in outcomes if o[0] < signalled < o[1]], signalled)}")
    refused_before = {o[2] for o in outcomes if o[0] < signalled and o[2] != "OK"}
    assert refused_before <= {"UNAVAILABLE"}, refused_before

    drained = max(o[1] for o in answered_after)  # the last accepted request was answered
    after = [o for o in outcomes if o[0] > signalled + MARGIN_S]
    assert after, "no request was sent after SIGTERM"
    assert not [o for o in after if o[2] == "OK"], "a request sent after SIGTERM was accepted"
    wrong = [o for o in after if o[1] < drained and o[2] != "UNAVAILABLE"]
    assert not wrong, f"sent during the drain, not UNAVAILABLE: {_rel(wrong, signalled)}"
    # Known race (reported): a request landing in the instant the gRPC server stops,
    # after the drain, may be CANCELLED by gRPC itself; anything else is a failure.
    late = {o[2] for o in after if o[1] >= drained}
    assert late <= {"UNAVAILABLE", "CANCELLED"}, late
