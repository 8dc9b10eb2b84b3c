"""The committed stubs are exactly what the generator writes today."""

import subprocess
import sys


def test_regenerating_the_stubs_changes_nothing():
    done = subprocess.run([sys.executable, "-m", "protos.generate", "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_generated_modules_import_by_package_path_and_keep_wire_packages():
    from protos.highway.v1 import classifier_pb2, classifier_pb2_grpc
    from protos.inference import grpc_service_pb2, grpc_service_pb2_grpc

    assert classifier_pb2.DESCRIPTOR.package == "highway.v1"
    assert grpc_service_pb2.DESCRIPTOR.package == "inference"
    assert hasattr(classifier_pb2_grpc, "ClassifierServicer")
    assert hasattr(grpc_service_pb2_grpc, "GRPCInferenceServiceServicer")
