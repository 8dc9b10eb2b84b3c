"""The shared one-line message helpers and the recorded library versions."""

from __future__ import annotations

import platform
import subprocess
import sys

import numpy as np
import pytest

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


@pytest.mark.parametrize(("module", "prog", "args"), [
    ("tensorflow", "training", ["--model", "conv32", "--epochs", "1", "--out", "x"]),
    ("onnx", "export", ["--model", "m.keras", "--repository", "r"]),
])
def test_train_and_export_commands_say_which_extra_is_missing(module, prog, args):
    # A server-only install has these commands too: one line, no traceback.
    code = (f"import sys; sys.modules[{module!r}] = None; from {prog}.__main__ import main; "
            f"sys.exit(main({args!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"highway-{'train' if prog == 'training' else 'export'}: error: {module} is not "
        f"installed; this command needs the 'train' extra (pip install '.[train]')")
