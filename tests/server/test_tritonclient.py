"""Triton's own ``tritonclient.grpc`` works unchanged against the server.

tritonclient registers its own ``inference.*`` protobuf messages, which clash
with ours in one process, so the client runs in a subprocess, as a user's would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from export.parity import onnx_outputs

SCRIPT = r"""
import json, sys
import numpy as np
import tritonclient.grpc as tc

address, n = sys.argv[1], int(sys.argv[2])
images = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(n, 28, 28)
client = tc.InferenceServerClient(address)
meta = client.get_model_metadata("highway_mnist", as_json=True)
config = client.get_model_config("highway_mnist", as_json=True)["config"]
inp = tc.InferInput("images", list(images.shape), "UINT8")
inp.set_data_from_numpy(images)
out = [tc.InferRequestedOutput("probabilities"), tc.InferRequestedOutput("gate_activity")]
result = client.infer("highway_mnist", [inp], outputs=out, request_id="t1")
stats = client.get_inference_statistics("highway_mnist", as_json=True)["model_stats"]
print(json.dumps({
    "live": client.is_server_live(), "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("highway_mnist"),
    "server": client.get_server_metadata(as_json=True)["name"],
    "inputs": meta["inputs"], "platform": meta["platform"],
    "max_batch_size": config["max_batch_size"], "dynamic": "dynamic_batching" in config,
    "probabilities": result.as_numpy("probabilities").tolist(),
    "gates_shape": list(result.as_numpy("gate_activity").shape),
    "id": result.get_response().id,
    "stats": [(s["version"], s["inference_count"], s["inference_stats"]["success"]["count"])
              for s in stats],
}))
"""


def test_tritonclient_metadata_config_and_infer(shared_server, tiny_repository, fixture_mnist):
    images = fixture_mnist.x_test[:16]
    done = subprocess.run([sys.executable, "-c", SCRIPT, shared_server.address, "16"],
                          input=images.tobytes(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = json.loads(done.stdout)
    assert got["live"] and got["ready"] and got["model_ready"]
    assert got["server"] == "highway-mnist" and got["platform"] == "onnxruntime_onnx"
    assert got["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": ["-1", "28", "28"]}]
    assert got["max_batch_size"] == shared_server.app.settings.max_request_images
    assert got["dynamic"] and got["id"] == "t1" and got["gates_shape"] == [16, 2]
    assert got["stats"] == [["1", "16", "1"]]  # this module's server saw this one request
    expected, _ = onnx_outputs(tiny_repository / "highway_mnist" / "1" / "model.onnx", images)
    np.testing.assert_allclose(np.array(got["probabilities"]), expected, atol=1e-6)
