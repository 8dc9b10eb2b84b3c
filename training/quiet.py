"""Import TensorFlow without its C++ start-up chatter on the user's console.

TensorFlow 2.21 writes oneDNN and CUDA-probing notes straight to file
descriptor 2 while it loads, before any log level applies. The CLIs import it
through here: stderr is parked in a temporary file during the import and the
first device query, and replayed only if the import fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def _stderr_captured() -> Iterator[IO[bytes] | None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to park
        yield None
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Import TensorFlow quietly (once) and return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _stderr_captured() as sink:
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # loads the device plugins now, quietly
        except BaseException:
            if sink is not None:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))
            raise
    return tf
