"""config.pbtxt honoured as Triton does: batching per model, version policies, tensor checks."""

from __future__ import annotations

import logging
import threading

import grpc
import pytest

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from server.errors import ModelLoadError
from tests.server.repos import (
    MODEL,
    copy_repository,
    edit_config,
    infer_request,
    served_versions,
)


def test_max_batch_size_8_in_the_config_caps_every_run_at_8(start_server, tiny_repository,
                                                            tmp_path, fixture_mnist):
    repo = copy_repository(tiny_repository, tmp_path / "repo", config=(
        "max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 20000 }"))
    running = start_server(model_repository=repo, max_batch_size=64)  # the flag: a default
    images = fixture_mnist.x_test
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            for n in (3, 5, 1, 50):  # single requests above 8 are split into runs of 8
                running.kserve.ModelInfer(infer_request(images[i * 64:i * 64 + n]))
        except grpc.RpcError as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    runs = running.metric("highway_batch_size_count")
    assert running.metric("highway_batch_size_sum") == 8 * (3 + 5 + 1 + 50)
    assert running.metric("highway_batch_size_bucket", {"le": "8.0"}) == runs  # none above 8
    assert running.metric("highway_batch_size_bucket", {"le": "4.0"}) < runs  # runs merged
    info = running.classifier.GetModelInfo(hw.GetModelInfoRequest(model_name=MODEL))
    assert info.max_batch_size == 8
    config = running.kserve.ModelConfig(kserve.ModelConfigRequest(name=MODEL)).config
    assert config.parameters["max_batch_size_per_run"].string_value == "8"
    assert config.dynamic_batching.max_queue_delay_microseconds == 20000


@pytest.mark.parametrize("policy,expected", [
    ("", ["3"]),  # Triton's default: latest { num_versions: 1 }
    ("version_policy { latest { num_versions: 2 } }", ["2", "3"]),
    ("version_policy { all {} }", ["1", "2", "3"]),
    ("version_policy { specific { versions: [1, 3] } }", ["1", "3"]),
])
def test_version_policy_serves_exactly_the_versions_it_names(start_server, tiny_repository,
                                                            tmp_path, fixture_mnist, policy,
                                                            expected):
    repo = copy_repository(tiny_repository, tmp_path / "repo", versions=(1, 2, 3),
                           config=policy)
    running = start_server(model_repository=repo)
    assert served_versions(running) == expected
    for v in ("1", "2", "3"):
        request = infer_request(fixture_mnist.x_test[:2], version=v)
        if v in expected:
            assert running.kserve.ModelInfer(request).model_version == v
        else:
            with pytest.raises(grpc.RpcError) as e:
                running.kserve.ModelInfer(request)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    latest = running.kserve.ModelInfer(infer_request(fixture_mnist.x_test[:1]))
    assert latest.model_version == expected[-1]
    config = running.kserve.ModelConfig(kserve.ModelConfigRequest(name=MODEL)).config
    assert config.version_policy.WhichOneof("policy_choice") == (
        policy.split("{ ")[1].split(" ")[0] if policy else "latest")


def test_a_model_folder_without_config_loads_with_the_defaults_and_says_so(
        start_server, tiny_repository, tmp_path, fixture_mnist, caplog):
    repo = copy_repository(tiny_repository, tmp_path / "repo")
    (repo / MODEL / "config.pbtxt").unlink()
    with caplog.at_level(logging.INFO, logger="server.model_config"):
        running = start_server(model_repository=repo, max_batch_size=16,
                               max_queue_delay_us=700)
    assert any("no config.pbtxt; using the defaults" in r.getMessage() for r in caplog.records)
    response = running.kserve.ModelInfer(infer_request(fixture_mnist.x_test[:4]))
    assert sorted(o.name for o in response.outputs) == ["gate_activity", "probabilities"]
    config = running.kserve.ModelConfig(kserve.ModelConfigRequest(name=MODEL)).config
    assert [(t.name, list(t.dims)) for t in config.input] == [("images", [28, 28])]
    assert sorted((t.name, list(t.dims)) for t in config.output) == [
        ("gate_activity", [2]), ("probabilities", [10])]
    assert config.parameters["max_batch_size_per_run"].string_value == "16"
    assert config.dynamic_batching.max_queue_delay_microseconds == 700
    assert config.version_policy.latest.num_versions == 1


@pytest.mark.parametrize("edit,field", [
    ('input [ { name: "pixels" data_type: TYPE_UINT8 dims: [ 28, 28 ] } ]', "input[0].name"),
    ('output [ { name: "probabilities" data_type: TYPE_FP32 dims: [ 10 ] }, '
     '{ name: "gate_activity" data_type: TYPE_FP32 dims: [ 9 ] } ]', "output[1].dims"),
    ('input [ { name: "images" data_type: TYPE_FP32 dims: [ 28, 28 ] } ]', "input[0].data_type"),
    ("max_batch_size: -2", "max_batch_size"),
    ("version_policy { latest { num_versions: 0 } }", "version_policy.latest.num_versions"),
    ("dynamic_batching { preferred_batch_size: [ 128 ] }",
     "dynamic_batching.preferred_batch_size"),
])
def test_a_config_that_contradicts_the_model_fails_it_with_one_line_naming_the_field(
        start_server, tiny_repository, tmp_path, edit, field):
    repo = copy_repository(tiny_repository, tmp_path / "repo")
    # Replace, not extend, a tensor list.
    edit_config(repo / MODEL, edit, clear=tuple(k for k in ("input", "output")
                                                if edit.startswith(k)))
    with pytest.raises(ModelLoadError) as e:
        start_server(model_repository=repo)
    message = str(e.value)
    assert field in message and "\n" not in message, message
