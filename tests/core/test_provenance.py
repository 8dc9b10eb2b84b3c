"""The machine description every results file carries: specific enough to tell CPUs apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from highway_core import provenance


@pytest.mark.parametrize("flags, units", [
    ({"avx2", "avx", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"},
     "AVX-512, VNNI, BF16, AMX"),
    ({"avx2", "avx", "avx512f"}, "AVX-512"),
    ({"avx2", "avx", "sse4_2"}, "AVX2"),
    ({"asimd"}, "NEON"),
    (set(), ""),
])
def test_vector_units_name_the_widest(flags, units):
    assert provenance.vector_units(flags) == units


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="Linux only")
def test_the_machine_names_family_model_and_vector_units_where_linux_tells_them():
    text = Path("/proc/cpuinfo").read_text()
    machine = provenance.machine()
    assert machine.endswith(f", {os.cpu_count()} cores, Linux")
    if "cpu family" in text and "model name" in text:
        family = next(line.split(":")[1].strip() for line in text.splitlines()
                      if line.startswith("cpu family"))
        assert f"(family {family} model " in machine
    stamp = provenance.stamp()
    assert stamp["machine"] == machine and stamp["date"].endswith("+00:00")
