"""grpc.health.v1 transitions, KServe readiness, reflection, draining."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from tests.polling import wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ("", "highway.v1.Classifier", "inference.GRPCInferenceService")


def status(running, service=""):
    stub = health_pb2_grpc.HealthStub(running.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_not_serving_until_the_model_is_loaded_and_warm_then_serving(start_server):
    running = start_server(load=False)
    assert [status(running, s) for s in SERVICES] == [NOT_SERVING] * 3
    assert not running.kserve.ServerReady(kserve.ServerReadyRequest()).ready
    with pytest.raises(grpc.RpcError) as caught:
        running.classifier.Predict(hw.PredictRequest(images=[bytes(784)]))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    running.server.call(running.app.load())
    assert [status(running, s) for s in SERVICES] == [SERVING] * 3
    assert running.kserve.ServerReady(kserve.ServerReadyRequest()).ready


def test_shutdown_turns_health_not_serving_refuses_new_calls_and_finishes_accepted(
        start_server, fixture_mnist):
    # One image per run: each 3000-image request keeps the server busy a while.
    running = start_server(max_batch_size=1, max_request_images=4096, max_queue=100_000)
    stub = health_pb2_grpc.HealthStub(running.channel)
    watched: list[int] = []
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    watcher = threading.Thread(target=lambda: watched.extend(r.status for r in _safe(watch)))
    watcher.start()
    images = [im.tobytes() for im in fixture_mnist.x_train[:3000]]

    def heavy(_):
        return running.classifier.Predict(hw.PredictRequest(images=images), timeout=60)

    with ThreadPoolExecutor(3) as pool:
        accepted = [pool.submit(heavy, i) for i in range(3)]
        wait_until(lambda: running.app.calls.active >= 3, "3 calls active", timeout=20,
                   interval=0.005)
        stopper = threading.Thread(target=running.server.stop)
        stopper.start()
        wait_until(lambda: running.app.calls.draining, "the server draining", interval=0.001)
        with pytest.raises(grpc.RpcError) as late:
            running.classifier.Predict(hw.PredictRequest(images=images[:1]), timeout=10)
        answers = [f.result() for f in accepted]
        stopper.join(30)
    watcher.join(10)
    assert late.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [len(a.predictions) for a in answers] == [3000] * 3
    assert watched[0] == SERVING and NOT_SERVING in watched


def _safe(stream):
    try:
        yield from stream
    except grpc.RpcError:  # the stream ends when the server stops
        return


def test_reflection_lists_and_describes_every_service(shared_server):
    db = ProtoReflectionDescriptorDatabase(shared_server.channel)
    services = set(db.get_services())
    assert {"highway.v1.Classifier", "inference.GRPCInferenceService",
            "grpc.health.v1.Health"} <= services
    file = db.FindFileContainingSymbol("highway.v1.Classifier")
    assert "Predict" in [m.name for s in file.service for m in s.method]
    file = db.FindFileContainingSymbol("inference.GRPCInferenceService")
    assert {"ModelInfer", "ModelConfig", "ModelMetadata"} <= {
        m.name for s in file.service for m in s.method}
