"""--grpc-restricted-protocol: categories of calls that need a header, as in Triton."""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from server.restricted import CATEGORIES, KNOWN, category, parse_groups
from server.settings import from_args

SECRET = "Zq9-v4lue-n0t-in-logs"
ADMIN = "adm1n-Zq9-secret"
GROUPS = (f"inference:x-infer-key={SECRET}",
          f"health,metadata,model-config,statistics:x-admin-key={ADMIN}")


@pytest.fixture(scope="module")
def restricted(base_settings):
    from dataclasses import replace

    from tests.server.helpers import launch

    running = launch(replace(base_settings, grpc_restricted_protocol=GROUPS))
    yield running
    running.close()


def test_every_method_of_every_served_service_has_a_category():
    services = [hw.DESCRIPTOR.services_by_name["Classifier"],
                kserve.DESCRIPTOR.services_by_name["GRPCInferenceService"],
                health_pb2.DESCRIPTOR.services_by_name["Health"],
                reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]]
    for service in services:
        for method in service.methods:
            assert category(f"/{service.full_name}/{method.name}") in KNOWN, method.full_name
    assert set(CATEGORIES.values()) == set(KNOWN)  # Triton's nine, each used
    assert category("/some.Other/Call") is None


def test_the_flag_is_repeatable_and_reads_its_environment_variable():
    s = from_args(["--grpc-restricted-protocol", GROUPS[0],
                   "--grpc-restricted-protocol", GROUPS[1]], environ={})
    assert s.grpc_restricted_protocol == GROUPS
    s = from_args([], environ={"HIGHWAY_GRPC_RESTRICTED_PROTOCOL": ";".join(GROUPS)})
    assert s.grpc_restricted_protocol == GROUPS
    assert SECRET not in repr(s) and SECRET not in repr(parse_groups(GROUPS))


@pytest.mark.parametrize("spec,fragment", [
    (f"inference:x-key{SECRET}", "CATEGORY"),
    (f"inferense:x-key={SECRET}", "unknown category 'inferense'"),
    (f":x-key={SECRET}", "no category"),
    (f"inference:grpc-timeout={SECRET}", "not a usable header name"),
    (f"inference:x-key-bin={SECRET}", "not a usable header name"),
    ("inference:x-key=", "printable ASCII and not empty"),
    (f"inference,health:x-key={SECRET};health:y-key={SECRET}", "restricted twice"),
])
def test_bad_groups_are_refused_without_echoing_the_value(spec, fragment):
    with pytest.raises(ValueError) as error:
        from_args([], environ={"HIGHWAY_GRPC_RESTRICTED_PROTOCOL": spec})
    assert fragment in str(error.value) and SECRET not in str(error.value)


def denied(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert SECRET not in error.value.details() and ADMIN not in error.value.details()
    return error.value


def test_restricted_calls_need_their_header_and_pass_with_it(restricted, caplog):
    caplog.set_level(logging.DEBUG)
    predict = hw.PredictRequest(images=[bytes(784)])
    infer_key, admin_key = [("x-infer-key", SECRET)], [("x-admin-key", ADMIN)]
    error = denied(lambda: restricted.classifier.Predict(predict, timeout=30))
    assert "'inference'" in error.details() and "'x-infer-key'" in error.details()
    denied(lambda: restricted.classifier.Predict(predict, timeout=30,
                                                 metadata=[("x-infer-key", SECRET[:-1])]))
    denied(lambda: restricted.classifier.Predict(predict, timeout=30, metadata=admin_key))
    assert len(restricted.classifier.Predict(predict, timeout=30,
                                             metadata=infer_key).predictions) == 1

    denied(lambda: restricted.classifier.GetModelInfo(hw.GetModelInfoRequest(), timeout=30))
    restricted.classifier.GetModelInfo(hw.GetModelInfoRequest(), timeout=30,
                                       metadata=admin_key)
    denied(lambda: restricted.kserve.ModelConfig(kserve.ModelConfigRequest(
        name="highway_mnist"), timeout=30, metadata=infer_key))
    denied(lambda: restricted.kserve.ModelStatistics(kserve.ModelStatisticsRequest(),
                                                     timeout=30))

    health = health_pb2_grpc.HealthStub(restricted.channel)
    denied(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=30))
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=30,
                        metadata=admin_key).status == health_pb2.HealthCheckResponse.SERVING
    denied(lambda: next(health.Watch(health_pb2.HealthCheckRequest(), timeout=30)))
    denied(lambda: restricted.kserve.ServerLive(kserve.ServerLiveRequest(), timeout=30))

    reflect = reflection_pb2_grpc.ServerReflectionStub(restricted.channel)
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    denied(lambda: next(reflect.ServerReflectionInfo(iter([ask]), timeout=30)))
    answer = next(reflect.ServerReflectionInfo(iter([ask]), timeout=30, metadata=admin_key))
    assert "highway.v1.Classifier" in {s.name for s in answer.list_services_response.service}

    assert restricted.metric("highway_denied_requests_total", {"category": "inference"}) == 3
    assert restricted.metric("highway_denied_requests_total", {"category": "health"}) == 3
    assert SECRET not in caplog.text and ADMIN not in caplog.text
