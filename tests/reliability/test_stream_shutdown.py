"""SIGTERM with a stream open: requests already read are answered, then UNAVAILABLE.

A real ``python -m server`` process on the shipped model (configured for one
image per model run), and a stream of 20 48-image requests that the client
keeps open (never half-closes). Once the server has read them all, SIGTERM: every one of them
must still be answered, in order, before the stream ends with UNAVAILABLE; a
stream opened during the drain is refused UNAVAILABLE; the process exits 0.
"""

from __future__ import annotations

import re
import signal
import threading

import grpc

from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from tests.polling import sample, scrape, wait_until
from tests.reliability.support import channel, running_server
from tests.server.streaming import HeldOpen, infer, slow_repository

N = 20
IMAGES = 48  # per request: 960 one-image runs (the queue holds 1,024), so SIGTERM lands mid-stream
# (with 8, a loaded machine could answer all 20 between the last scrape and the signal)


def _stream_progress(server) -> float:
    """Requests read from the stream: in flight plus answered."""
    samples = scrape(server.metrics_port)
    return (sample(samples, "highway_inflight_requests")
            + sample(samples, "highway_requests_total", code="OK", method="ModelStreamInfer"))


def test_sigterm_answers_what_the_stream_sent_then_ends_it_unavailable(fixture_mnist,
                                                                        tmp_path):
    log = tmp_path / "server.log"
    requests = HeldOpen([infer(fixture_mnist.x_test[:IMAGES], id=str(i)) for i in range(N)])
    answers, ended = [], {}

    def read(call) -> None:
        try:
            answers.extend(call)
            ended["code"] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            ended["code"], ended["details"] = e.code(), e.details()

    with running_server(slow_repository(tmp_path / "slow"),
                        "--max-queue-delay-us", "0", "--grace-period-s", "60",
                        "--log-level", "INFO", log=log) as server, channel(server) as ch:
        stub = kserve_grpc.GRPCInferenceServiceStub(ch)
        reader = threading.Thread(target=read, args=(stub.ModelStreamInfer(iter(requests),
                                                                            timeout=120),))
        reader.start()
        try:
            wait_until(lambda: _stream_progress(server) == N, "the server to read the stream")
            server.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "draining" in log.read_text(), "the server to start draining")
            with channel(server) as late:
                refused = _refusal(late, fixture_mnist)
            exit_code = server.proc.wait(90)
            reader.join(60)
        finally:
            requests.release.set()
    found = re.search(r"finishing (\d+) request", log.read_text())
    assert found and int(found.group(1)) >= 1, "nothing was in flight at SIGTERM"
    assert exit_code == 0
    assert [a.infer_response.id for a in answers] == [str(i) for i in range(N)]
    assert {a.error_message for a in answers} == {""}
    assert ended["code"] == grpc.StatusCode.UNAVAILABLE, ended
    assert refused == "UNAVAILABLE"


def _refusal(ch: grpc.Channel, fixture_mnist) -> str:
    """How a stream opened now ends."""
    call = kserve_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(
        iter([infer(fixture_mnist.x_test[:1], id="late")]), timeout=30)
    try:
        answers = list(call)
    except grpc.RpcError as e:
        return e.code().name
    return f"answered: {answers}"
