"""Raw ONNX Runtime on the GPU, and the JSON of ``scripts/gpu_check.sh``.

Needs only numpy and onnxruntime (the GPU build that the shell script installs),
so it runs on a bare GPU machine. Two subcommands:

``raw``: one session on the requested provider (refused in one line when ONNX
Runtime would silently fall back to CPU), images/s and p50 at each batch with
plain ``run`` (numpy in, numpy out: what a server pays) and with IO binding
(input already on the device, outputs left there: the model's own cost), and
parity with the CPU provider on real MNIST test images.

``merge``: raw figures + the server benchmark's JSON (or why it was skipped)
into the one result file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: gpu_check.sh sets PYTHONPATH too

from highway_core import provenance  # noqa: E402
from highway_core.idx import read_idx  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "mnist" / "t10k-images-idx3-ubyte.gz"
PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
OUTPUTS = ["probabilities", "gate_activity"]


class CheckError(Exception):
    """One line for the user; the script exits 1."""


def test_images() -> np.ndarray:
    """The committed fixture's real MNIST test images, uint8 [N, 28, 28]."""
    return read_idx(FIXTURE)


def session(model: Path, device: str):
    import onnxruntime as ort

    wanted = PROVIDERS[device]
    if wanted not in ort.get_available_providers():
        raise CheckError(f"this onnxruntime ({ort.__version__}) has no {wanted}; "
                         f"available: {', '.join(ort.get_available_providers())}")
    providers = list(dict.fromkeys([wanted, "CPUExecutionProvider"]))
    sess = ort.InferenceSession(str(model), providers=providers)
    if sess.get_providers()[0] != wanted:  # ORT falls back to CPU without a word
        raise CheckError(f"{wanted} did not initialise (session runs on "
                         f"{sess.get_providers()[0]}); check the CUDA/cuDNN libraries")
    return sess


def _timed(call, batch: int, seconds: float) -> dict:
    call()  # warm-up: allocations, cuDNN algorithm search
    lat, begin = [], time.perf_counter()
    while (now := time.perf_counter()) - begin < seconds or not lat:
        call()
        lat.append(time.perf_counter() - now)
    return {"images_per_s": len(lat) * batch / sum(lat),
            "p50_ms": statistics.median(lat) * 1e3, "runs": len(lat)}


def raw(model: Path, device: str, batches: list[int], seconds: float) -> dict:
    import onnxruntime as ort

    sess = session(model, device)
    images = test_images()
    result: dict = {"provider": sess.get_providers()[0], "onnxruntime": ort.__version__,
                    "batches": {}}
    ort_device = "cuda" if device == "cuda" else "cpu"
    for batch in batches:
        x = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])))
        plain = _timed(lambda x=x: sess.run(OUTPUTS, {"images": x}), batch, seconds)
        binding = sess.io_binding()
        binding.bind_ortvalue_input("images", ort.OrtValue.ortvalue_from_numpy(x, ort_device))
        for name in OUTPUTS:
            binding.bind_output(name, ort_device)

        def bound(binding=binding):
            sess.run_with_iobinding(binding)
            binding.synchronize_outputs()

        result["batches"][str(batch)] = {"run": plain, "io_binding_on_device": _timed(
            bound, batch, seconds)}
    x = images[:1000]
    p_dev, g_dev = sess.run(OUTPUTS, {"images": x})
    p_cpu, g_cpu = session(model, "cpu").run(OUTPUTS, {"images": x})
    result["parity_vs_cpu"] = {"images": len(x),
                               "max_abs_diff_probabilities": float(np.abs(p_dev - p_cpu).max()),
                               "max_abs_diff_gate_activity": float(np.abs(g_dev - g_cpu).max()),
                               "top1_agreement": float(np.mean(p_dev.argmax(1)
                                                               == p_cpu.argmax(1)))}
    return result


def machine() -> dict:
    gpu = "none"
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.strip() or "none"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"gpu": gpu, "cpu": provenance.cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def merge(raw_json: Path, server_json: Path | None, skipped: str | None, dry_run: bool,
          model: str, scratch: str | None) -> dict:
    server: dict = {"skipped": skipped}
    if not skipped:
        text = server_json.read_text()  # the scratch folder is no path worth recording
        server = json.loads(text.replace(scratch, "SCRATCH") if scratch else text)
    return {
        "what": "raw ONNX Runtime and the server on the GPU (scripts/gpu_check.sh)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "dry_run_on_cpu": dry_run, "model": model, "machine": machine(),
        "raw": json.loads(raw_json.read_text()), "server": server,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("raw")
    r.add_argument("--model", type=Path, required=True)
    r.add_argument("--device", choices=sorted(PROVIDERS), default="cuda")
    r.add_argument("--batches", default="1,64")
    r.add_argument("--seconds", type=float, default=5.0)
    r.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("merge")
    m.add_argument("--raw", type=Path, required=True)
    m.add_argument("--server", type=Path, default=None)
    m.add_argument("--server-skipped", default=None, help="why the server was not measured")
    m.add_argument("--dry-run", action="store_true")
    m.add_argument("--model", required=True, help="the model, as recorded")
    m.add_argument("--scratch", default=None, help="temporary folder to leave out of paths")
    m.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    try:
        if a.command == "raw":
            batches = [int(b) for b in a.batches.split(",")]
            a.out.write_text(json.dumps(raw(a.model, a.device, batches, a.seconds), indent=2))
        else:
            result = merge(a.raw, a.server, a.server_skipped, a.dry_run, a.model, a.scratch)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(result, indent=2) + "\n")
    except CheckError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"gpu_check: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
