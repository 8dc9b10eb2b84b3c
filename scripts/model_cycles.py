"""Memory over repeated unload/load cycles of one model, in a real server process.

    python scripts/model_cycles.py --out docs/perf/model_cycles.json   # + model_cycles.png

Starts ``python -m server`` in explicit mode on the shipped repository (loopback,
free port), then repeats RepositoryModelUnload, RepositoryModelLoad and one
ModelInfer (the reloaded model must answer) ``--cycles`` times, reading the
server's resident memory (VmRSS in /proc) after the first load and after each
cycle. Passes when the last reading lies within ``--limit-mb`` of the first.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from highway_core import provenance  # noqa: E402
from protos.inference import grpc_service_pb2 as kserve  # noqa: E402
from protos.inference import grpc_service_pb2_grpc as kserve_grpc  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def infer(stub, model: str) -> str:
    request = kserve.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="UINT8", shape=[8, 28, 28])
    request.raw_input_contents.append(np.zeros((8, 28, 28), np.uint8).tobytes())
    return stub.ModelInfer(request, timeout=60).model_version


def wait_ready(stub, proc: subprocess.Popen, model: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"model_cycles: the server exited with {proc.returncode}")
        try:
            infer(stub, model)
            return
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise SystemExit("model_cycles: the server did not get ready") from None
            time.sleep(0.2)


def measure(repository: Path, model: str, cycles: int) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--model-repository", str(repository), "--host",
         "127.0.0.1", "--grpc-port", str(port), "--metrics-port", "-1", "--device", "cpu",
         "--model-control-mode", "explicit", "--load-model", model, "--log-level", "WARNING"],
        cwd=ROOT, env=dict(os.environ, GRPC_VERBOSITY="ERROR"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = kserve_grpc.GRPCInferenceServiceStub(channel)
            wait_ready(stub, proc, model)
            readings = [rss_mb(proc.pid)]
            start = time.perf_counter()
            for _ in range(cycles):
                stub.RepositoryModelUnload(kserve.RepositoryModelUnloadRequest(model_name=model))
                stub.RepositoryModelLoad(kserve.RepositoryModelLoadRequest(model_name=model))
                infer(stub, model)
                readings.append(rss_mb(proc.pid))
            seconds = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(60)
    return {"readings_mb": [round(r, 1) for r in readings], "seconds": round(seconds, 1)}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readings = result["readings_mb"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(len(readings)), readings, marker=".", label="server RSS")
    ax.axhline(readings[0] + result["limit_mb"], color="tab:red", linestyle="--",
               label=f"start + {result['limit_mb']} MB")
    ax.set_xlabel("unload/load cycles")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title(f"{result['model']}: {result['cycles']} unload/load cycles "
                 f"({result['date'][:10]})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repository", type=Path, default=ROOT / "models")
    p.add_argument("--model", default="highway_mnist")
    p.add_argument("--cycles", type=int, default=50)
    p.add_argument("--limit-mb", type=float, default=50.0)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "perf" / "model_cycles.json")
    a = p.parse_args(argv)
    if a.cycles < 1 or not (a.repository / a.model).is_dir():
        print(f"model_cycles: error: need --cycles >= 1 and {a.repository / a.model}",
              file=sys.stderr)
        return 2
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} x {provenance.cpu_model()}, {platform.system()}",
        "command": "python scripts/model_cycles.py " + " ".join(argv or sys.argv[1:]),
        "model": a.model, "cycles": a.cycles, "limit_mb": a.limit_mb,
        **measure(a.repository, a.model, a.cycles),
    }
    readings = result["readings_mb"]
    result["start_mb"], result["end_mb"], result["max_mb"] = (
        readings[0], readings[-1], max(readings))
    result["growth_mb"] = round(readings[-1] - readings[0], 1)
    result["passed"] = result["growth_mb"] <= a.limit_mb
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, a.out.with_suffix(".png"))
    print(f"{a.cycles} cycles in {result['seconds']} s: RSS {readings[0]:.1f} -> "
          f"{readings[-1]:.1f} MB (max {result['max_mb']:.1f}); "
          f"{'within' if result['passed'] else 'NOT within'} {a.limit_mb:g} MB")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
