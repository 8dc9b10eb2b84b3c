"""ModelStreamInfer with Triton's semantics, driven by tritonclient and by raw gRPC streams.

One server on the shipped model for the module; each test reads metric deltas.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import numpy as np
import pytest

from protos.inference import grpc_service_pb2 as kserve
from tests.polling import wait_until
from tests.server.helpers import launch
from tests.server.streaming import MODEL, HeldOpen, digit, infer, shipped_settings

STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"

# tritonclient's own inference.* messages clash with ours in one process: own process.
TRITON_STREAM = r"""
import json, queue, sys
import numpy as np
import tritonclient.grpc as tc

address, n, bad = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
images = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(n, 28, 28)
answers = queue.Queue()
client = tc.InferenceServerClient(address)
client.start_stream(callback=lambda result, error: answers.put((result, error)))
for i in range(n):
    pixels = images[i:i + 1] if i != bad else np.zeros((1, 27, 28), np.uint8)  # malformed
    inp = tc.InferInput("images", list(pixels.shape), "UINT8")
    inp.set_data_from_numpy(pixels)
    client.async_stream_infer(MODEL, [inp], request_id=f"r{i}")
out = []
for _ in range(n):
    result, error = answers.get(timeout=120)
    if error is not None:
        out.append({"error": str(error)})
        continue
    response = result.get_response()
    out.append({"id": response.id, "digit": int(result.as_numpy("probabilities").argmax()),
                "final": response.parameters["triton_final_response"].bool_param})
client.stop_stream()
client.close()
print(json.dumps(out))
""".replace("MODEL", repr(MODEL))


@pytest.fixture(scope="module")
def server():
    running = launch(shipped_settings())
    yield running
    running.close()


def test_tritonclient_stream_of_1000_test_images_in_order_with_one_malformed(server,
                                                                             fixture_mnist):
    n, bad = 1000, 500
    images, labels = fixture_mnist.x_test[:n], fixture_mnist.y_test[:n]
    count = {code: server.metric("highway_request_duration_seconds_count",
                                 {"method": "ModelStreamInfer", "code": code})
             for code in ("OK", "INVALID_ARGUMENT")}
    done = subprocess.run([sys.executable, "-c", TRITON_STREAM, server.address, str(n), str(bad)],
                          input=images.tobytes(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    answers = json.loads(done.stdout)
    assert answers[bad] == {"error": "INVALID_ARGUMENT: input 'images' has images of 27x28; "
                                     "expected 28x28"}
    good = [a for i, a in enumerate(answers) if i != bad]
    assert [a["id"] for a in good] == [f"r{i}" for i in range(n) if i != bad]  # in order
    assert all(a["final"] for a in good)
    digits = np.array([a["digit"] for a in good])
    accuracy = (digits == np.delete(labels, bad)).mean()
    assert accuracy >= 0.99, accuracy
    for code, added in (("OK", n - 1), ("INVALID_ARGUMENT", 1)):  # each request observed
        assert server.metric("highway_request_duration_seconds_count",
                             {"method": "ModelStreamInfer", "code": code}) == count[code] + added


def _bad_requests(image: np.ndarray) -> list[kserve.ModelInferRequest]:
    wrong_type = infer(image, id="type")
    wrong_type.inputs[0].datatype = "INT64"
    return [_reshaped(image), wrong_type,
            infer(image, id="model", model_name="nope"),
            infer(image, id="version", model_version="x"),
            infer(image[:, :, :14].copy(), id="bytes"),
            _with_output(infer(image, id="output"), "logits")]


def _reshaped(image: np.ndarray) -> kserve.ModelInferRequest:
    request = infer(image, id="shape")
    request.inputs[0].shape[:] = [1, 784]
    return request


def _with_output(request: kserve.ModelInferRequest, name: str) -> kserve.ModelInferRequest:
    request.outputs.add(name=name)
    return request


def test_each_bad_request_gets_the_unary_message_and_its_id_while_the_others_succeed(
        server, fixture_mnist):
    image = fixture_mnist.x_test[:1]
    bad = _bad_requests(image)
    unary = []
    for request in bad:
        with pytest.raises(grpc.RpcError) as caught:
            server.kserve.ModelInfer(request, timeout=30)
        unary.append(f"{caught.value.code().name}: {caught.value.details()}")
    sent = []
    for i, request in enumerate(bad):
        sent += [infer(image, id=f"ok{i}"), request]
    answers = list(server.kserve.ModelStreamInfer(iter(sent), timeout=60))
    assert [a.infer_response.id for a in answers] == [r.id for r in sent]
    assert [a.error_message for a in answers[1::2]] == unary
    assert all(a.infer_response.parameters["triton_final_response"].bool_param for a in answers)
    assert {a.error_message for a in answers[0::2]} == {""}
    assert {digit(a.infer_response) for a in answers[0::2]} == {int(fixture_mnist.y_test[0])}


def test_undecodable_bytes_get_an_error_message_and_the_stream_goes_on(server, fixture_mnist):
    call = server.channel.stream_stream(STREAM, request_serializer=None,
                                        response_deserializer=kserve.ModelStreamInferResponse
                                        .FromString)
    good = infer(fixture_mnist.x_test[:1], id="a").SerializeToString()
    answers = list(call(iter([good, b"\xff\xff\xff", good]), timeout=30))
    assert [bool(a.error_message) for a in answers] == [False, True, False]
    assert answers[1].error_message.startswith(
        "INVALID_ARGUMENT: the request is not a valid inference.ModelInferRequest message")


def test_requests_of_one_stream_share_model_runs(server, fixture_mnist):
    """Sent all at once, later requests wait in the batcher together: batches above 1."""
    def batches() -> tuple[float, float]:
        return (server.metric("highway_batch_size_count"),
                server.metric("highway_batch_size_bucket", {"le": "1.0"}))

    runs, singles = batches()
    sent = [infer(fixture_mnist.x_test[i:i + 1], id=str(i)) for i in range(128)]
    answers = list(server.kserve.ModelStreamInfer(iter(sent), timeout=60))
    assert [a.infer_response.id for a in answers] == [r.id for r in sent]
    runs_after, singles_after = batches()
    assert runs_after - runs < 128  # fewer model runs than requests
    assert singles_after - singles < runs_after - runs  # some run held several requests


def test_open_stream_gauge_counts_an_idle_open_stream(server, fixture_mnist):
    requests = HeldOpen([infer(fixture_mnist.x_test[:1], id="only")])
    call = server.kserve.ModelStreamInfer(iter(requests), timeout=60)
    try:
        assert next(call).infer_response.id == "only"
        # Answered (counted once its write completes), the stream still open.
        wait_until(lambda: server.metric("highway_inflight_requests") == 0, "no request in flight")
        assert server.metric("highway_open_streams") == 1
    finally:
        requests.release.set()  # half-close: the stream ends OK
    assert list(call) == [] and call.code() == grpc.StatusCode.OK
    wait_until(lambda: server.metric("highway_open_streams") == 0, "the stream to close")
