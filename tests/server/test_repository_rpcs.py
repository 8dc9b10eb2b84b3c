"""Triton's model-repository extension with tritonclient: index, load, unload, readiness.

tritonclient registers its own ``inference.*`` protobuf messages, which clash with
ours in one process, so the client runs in a subprocess, as a user's would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import grpc
import pytest

from protos.inference import grpc_service_pb2 as kserve
from tests.server.repos import MODEL, copy_repository, infer_request

SCRIPT = r"""
import json, sys
import numpy as np
import tritonclient.grpc as tc
from tritonclient.utils import InferenceServerException

client = tc.InferenceServerClient(sys.argv[1])
images = np.zeros((2, 28, 28), np.uint8)
out = {}

def infer(model):
    inp = tc.InferInput("images", [2, 28, 28], "UINT8")
    inp.set_data_from_numpy(images)
    try:
        return client.infer(model, [inp]).get_response().model_version
    except InferenceServerException as e:
        return e.status()

def index():
    return [(m["name"], m.get("version", ""), m.get("state", ""), m.get("reason", ""))
            for m in client.get_model_repository_index(as_json=True).get("models", [])]

out["extensions"] = client.get_server_metadata(as_json=True)["extensions"]
out["index_before"] = index()
out["ready_before"] = [client.is_model_ready("highway_mnist"), client.is_model_ready("second")]
client.unload_model("highway_mnist")
out["after_unload"] = [infer("highway_mnist"), infer("second"),
                       client.is_model_ready("highway_mnist")]
out["index_unloaded"] = index()
client.load_model("highway_mnist")
out["after_load"] = [infer("highway_mnist"), client.is_model_ready("highway_mnist")]
try:
    client.load_model("nonexistent")
except InferenceServerException as e:
    out["load_missing"] = [e.status(), e.message()]
print(json.dumps(out))
"""


def test_explicit_mode_unload_and_load_with_tritonclient(start_server, tiny_repository, tmp_path):
    repo = copy_repository(tiny_repository, tmp_path / "repo")
    copy_repository(tiny_repository, repo, name="second")
    copy_repository(tiny_repository, repo, name="not_loaded")
    running = start_server(model_repository=repo, model_control_mode="explicit",
                           load_model=(MODEL, "second"))
    done = subprocess.run([sys.executable, "-c", SCRIPT, running.address],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert "model_repository" in got["extensions"]
    assert got["index_before"] == [[MODEL, "1", "READY", ""], ["not_loaded", "", "", ""],
                                   ["second", "1", "READY", ""]]
    assert got["ready_before"] == [True, True]
    status, second, ready = got["after_unload"]
    assert status == "StatusCode.NOT_FOUND" and second == "1" and ready is False
    assert [MODEL, "1", "UNAVAILABLE", "unloaded"] in got["index_unloaded"]
    assert got["after_load"] == ["1", True]
    assert got["load_missing"][0] == "StatusCode.NOT_FOUND"
    assert "nonexistent" in got["load_missing"][1]


def test_unloading_answers_the_requests_it_already_queued(start_server, tiny_repository,
                                                          tmp_path, fixture_mnist):
    repo = copy_repository(tiny_repository, tmp_path / "repo", config="max_batch_size: 1")
    running = start_server(model_repository=repo, model_control_mode="explicit",
                           load_model=(MODEL,), max_queue=1_000_000)
    results: list[str] = []

    def client() -> None:  # 500 images, one per run: long enough to be queued at unload
        request = infer_request(fixture_mnist.x_test[:500])
        try:
            results.append(running.kserve.ModelInfer(request, timeout=120).model_version)
        except grpc.RpcError as e:
            results.append(e.code().name)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    batcher = running.app.served.get(MODEL, 1).batcher
    while batcher.queued() == 0 and not results:
        time.sleep(0.001)  # until the requests are in the queue
    workers = batcher_threads()
    running.kserve.RepositoryModelUnload(kserve.RepositoryModelUnloadRequest(model_name=MODEL))
    for t in threads:
        t.join(120)
    assert results == ["1"] * 4
    assert batcher_threads() == workers - 1  # the unloaded version's worker has ended
    with pytest.raises(grpc.RpcError) as e:
        running.kserve.ModelInfer(infer_request(fixture_mnist.x_test[:1]))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def batcher_threads() -> int:
    return sum(t.name == f"{MODEL}-1" for t in threading.enumerate())


@pytest.mark.parametrize("mode", ["none", "poll"])
def test_load_and_unload_are_refused_outside_explicit_mode_as_triton_does(
        start_server, mode, fixture_mnist):
    running = start_server(model_control_mode=mode)
    for call, message in ((running.kserve.RepositoryModelLoad, kserve.RepositoryModelLoadRequest),
                          (running.kserve.RepositoryModelUnload,
                           kserve.RepositoryModelUnloadRequest)):
        with pytest.raises(grpc.RpcError) as e:
            call(message(model_name=MODEL))
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert e.value.details() == ("explicit model load / unload is not allowed if polling "
                                     "is enabled")
    assert running.kserve.ModelInfer(infer_request(fixture_mnist.x_test[:1])).model_version == "1"
    rows = running.kserve.RepositoryIndex(kserve.RepositoryIndexRequest()).models
    assert [(m.name, m.version, m.state) for m in rows] == [(MODEL, "1", "READY")]
