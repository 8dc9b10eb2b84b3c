"""ONNX Runtime sessions: provider choice, threading, warm-up. No grpc here.

onnxruntime-gpu falls back to CPU silently when CUDA does not initialise and
prints multi-line library errors while trying; so CUDA is tried with ORT's log
muted, and the provider that is *actually* active is what gets reported.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from highway_core.messages import first_line
from server.errors import ModelLoadError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_ORT_TYPES = {"tensor(uint8)": "UINT8", "tensor(float)": "FP32"}
_ORT_ERROR, _ORT_FATAL = 3, 4


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as KServe V2 names it; -1 marks a variable dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


def _cuda_reason() -> str:
    """Why the CUDA provider did not initialise, in one line (best effort)."""
    if CUDA not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA provider"
    lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    try:
        ctypes.CDLL(str(lib))
    except OSError as e:
        return first_line(e).split(" with error: ")[-1]
    return "no usable CUDA device"


def _options(intra_op_threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning intra-op threads steal the CPU the gRPC threads need between runs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def create_session(path: Path, device: str, intra_op_threads: int = 0) -> ort.InferenceSession:
    """A session on the provider ``device`` asks for; ModelLoadError (one line) if impossible."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    wants_cuda = device in ("auto", "cuda") and CUDA in ort.get_available_providers()
    providers = [CUDA, CPU] if wants_cuda else [CPU]
    # Mute ORT while CUDA is tried: its failure is multi-line and we report it in one.
    ort.set_default_logger_severity(_ORT_FATAL if wants_cuda else _ORT_ERROR)
    try:
        session = ort.InferenceSession(str(path), sess_options=_options(intra_op_threads),
                                       providers=providers)
    except Exception as e:  # ORT raises several types for corrupt files
        raise ModelLoadError(f"{path}: cannot load model: {first_line(e)}") from None
    finally:
        ort.set_default_logger_severity(_ORT_ERROR)
    active = session.get_providers()[0]
    if device == "cuda" and active != CUDA:
        raise ModelLoadError(f"--device cuda: CUDA is not active ({_cuda_reason()})")
    if device == "auto" and active != CUDA:
        log.info("CUDA not active (%s); using %s", _cuda_reason(), active)
    return session


def release_freed_memory() -> None:
    """Returns memory freed by closed sessions to the OS (glibc only; elsewhere a no-op).

    A session's arena and graph are freed when it is dropped, but glibc keeps the
    freed pages in its per-thread arenas; without this, every unload/load cycle of
    a model adds megabytes of resident memory that is free but never returned.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Runtime:
    """One loaded ONNX model: ``run`` maps uint8 images [N, 28, 28] to named outputs."""

    def __init__(self, path: Path, device: str = "auto", intra_op_threads: int = 0):
        self._session = create_session(path, device, intra_op_threads)
        self.provider: str = self._session.get_providers()[0]
        self.inputs = [self._spec(t) for t in self._session.get_inputs()]
        self.outputs = [self._spec(t) for t in self._session.get_outputs()]
        self.output_names = [t.name for t in self.outputs]
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        if len(self.inputs) != 1:
            raise ModelLoadError(f"{path}: expected one input, found {len(self.inputs)}")
        self.input_name = self.inputs[0].name

    @staticmethod
    def _spec(arg: ort.NodeArg) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else -1 for d in arg.shape)
        return TensorSpec(arg.name, _ORT_TYPES.get(arg.type, arg.type), shape)

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """One ONNX Runtime run over a batch; outputs by name."""
        results = self._session.run(self.output_names, {self.input_name: images})
        return dict(zip(self.output_names, results, strict=True))

    def warm_up(self, max_batch_size: int) -> None:
        """Runs batch 1 and a full batch so the first requests do not pay for allocation."""
        shape = self.inputs[0].shape[1:]
        for n in sorted({1, max_batch_size}):
            self.run(np.zeros((n, *shape), dtype=np.uint8))
