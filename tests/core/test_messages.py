"""The shared one-line message helpers and the recorded library versions."""

from __future__ import annotations

import platform

import numpy as np

from highway_core.messages import first_line, one_line
from highway_core.versions import library_versions


def test_first_line_keeps_the_first_line_of_a_long_library_message():
    error = RuntimeError("  [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : bad file  \nStack:\n#0 ...")
    assert first_line(error) == "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : bad file"


def test_empty_messages_fall_back_to_the_type_name():
    assert first_line(ValueError()) == "ValueError"
    assert first_line(OSError("  \n ")) == "OSError"
    assert one_line(KeyError()) == "KeyError"


def test_one_line_joins_a_wrapped_message():
    assert one_line(ValueError("model file\n  not found:\n\n x.keras ")) == (
        "model file not found: x.keras")


def test_library_versions_start_with_python_and_follow_the_order_asked():
    found = library_versions("numpy", "grpc")
    assert list(found) == ["python", "numpy", "grpc"]
    assert found["python"] == platform.python_version() and found["numpy"] == np.__version__
