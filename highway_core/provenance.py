"""When and where a result was made: recorded in every results file that quotes numbers.

Free of TensorFlow and ONNX Runtime, so that every part (training, export, the
server's tools, the benchmark) describes its machine the same way. The machine is
described, never named: committed files carry no host names or paths.
"""

from __future__ import annotations

import datetime
import os
import platform


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> str:
    """e.g. 'AMD EPYC 9B14, 2 cores, Linux'."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()}"


def stamp() -> dict[str, str]:
    """``{"date": ISO UTC, "machine": ...}`` for a results file."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"date": now, "machine": machine()}
