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
    """The CPU's model name (Linux: with its family, model and widest vector units, since
    a name such as 'AMD EPYC' covers CPUs years and several times apart), else what
    ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines()
                          if ":" in line)
    except OSError:
        fields = {}
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine() or "unknown"
    details = [f"family {fields['cpu family']} model {fields['model']}"] if (
        "cpu family" in fields and "model" in fields) else []
    units = vector_units(set(fields.get("flags", "").split()))
    return f"{name} ({'; '.join([*details, units])})" if units or details else name


def vector_units(flags: set[str]) -> str:
    """The widest SIMD and matrix units among /proc/cpuinfo ``flags``, e.g. 'AVX-512, VNNI'."""
    if "avx512f" in flags:
        extras = [n for f, n in (("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"),
                                 ("amx_tile", "AMX")) if f in flags]
        return ", ".join(["AVX-512", *extras])
    return next((n for f, n in (("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"),
                                ("asimd", "NEON")) if f in flags), "")


def machine() -> str:
    """e.g. 'AMD EPYC (family 26 model 2; AVX-512, VNNI, BF16), 2 cores, Linux'."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()}"


def stamp() -> dict[str, str]:
    """``{"date": ISO UTC, "machine": ...}`` for a results file."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"date": now, "machine": machine()}
