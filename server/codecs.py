"""Protocol messages ↔ numpy, with every check made before any reshape or allocation.

Both APIs end in one array: uint8 images [N, 28, 28]. Accepted pixel encodings:
- highway.v1 Predict: ``images`` (784 raw bytes each) or ``float_pixels`` in [0, 1];
- KServe ModelInfer: input ``images``, datatype UINT8 (0..255) or FP32 (0..255,
  rounded), shape [N, 28, 28], as ``raw_input_contents`` or typed ``contents``.
Sizes are compared with Python integers computed from the declared shape, so an
absurd shape is refused without allocating anything. Outgoing, beside the answers:
Triton's ModelStatistics message from a version's counters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from highway_core.facts import COLS, INPUT_NAME, ROWS
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from server.errors import InvalidArgument
from server.statistics import Snapshot

PIXELS = ROWS * COLS
_TYPED_FIELDS = ("bool_contents", "int_contents", "int64_contents", "uint_contents",
                 "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents")
_FIELD_FOR = {"UINT8": "uint_contents", "FP32": "fp32_contents"}


def parse_version(text: str) -> int:
    """KServe versions are strings: "" means latest (0), else a positive integer."""
    if text == "":
        return 0
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"model_version {text!r} is not a positive integer")
    return int(text)


def check_version(version: int) -> int:
    """highway.v1 versions: 0 means latest; negative ones are refused."""
    if version < 0:
        raise InvalidArgument(f"model_version {version} is negative (0 means latest)")
    return version


def _check_count(n: int, limit: int) -> None:
    if n == 0:
        raise InvalidArgument("empty batch: the request holds no images")
    if n > limit:
        raise InvalidArgument(f"batch of {n} images exceeds the per-request limit of {limit}")


def _floats_to_pixels(values: np.ndarray, top: float, what: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise InvalidArgument(f"{what} contains NaN or Inf")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > top:
        raise InvalidArgument(f"{what} values must lie in [0, {top:g}]; found [{low:g}, {high:g}]")
    scaled = values * (255.0 / top) if top != 255 else values
    return np.rint(scaled).astype(np.uint8)


def decode_predict(request: hw.PredictRequest, limit: int) -> np.ndarray:
    """A Predict request's images as uint8 [N, 28, 28]."""
    images, floats = request.images, request.float_pixels
    if images and floats:
        raise InvalidArgument("set either images or float_pixels, not both")
    if floats:
        count = len(floats)
        if count % PIXELS:
            raise InvalidArgument(f"float_pixels holds {count} values, not a multiple of "
                                  f"{PIXELS} (28x28 per image)")
        _check_count(count // PIXELS, limit)
        values = np.asarray(floats, dtype=np.float32)
        return _floats_to_pixels(values, 1.0, "float_pixels").reshape(-1, ROWS, COLS)
    _check_count(len(images), limit)
    for i, image in enumerate(images):
        if len(image) != PIXELS:
            raise InvalidArgument(f"images[{i}] has {len(image)} bytes; expected {PIXELS} "
                                  "(28x28 uint8, row-major)")
    joined = images[0] if len(images) == 1 else b"".join(images)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, ROWS, COLS)


def encode_predict(name: str, version: int, outputs: dict[str, np.ndarray],
                   gates: bool) -> hw.PredictResponse:
    """One Prediction per image: digit, confidence, probabilities (and gate activity)."""
    probabilities = outputs["probabilities"]
    digits = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(digits)), digits]
    response = hw.PredictResponse(model_name=name, model_version=version)
    rows = probabilities.tolist()
    gate_rows = outputs["gate_activity"].tolist() if gates else None
    add = response.predictions.add
    for i, (digit, conf) in enumerate(zip(digits.tolist(), confidence.tolist(), strict=True)):
        prediction = add(digit=digit, confidence=conf, probabilities=rows[i])
        if gate_rows is not None:
            prediction.gate_activity.extend(gate_rows[i])
    return response


def _input(request: kserve.ModelInferRequest) -> kserve.ModelInferRequest.InferInputTensor:
    if not request.inputs:
        raise InvalidArgument(f"no inputs; the model takes {INPUT_NAME!r}")
    seen: set[str] = set()
    for tensor in request.inputs:
        if tensor.name in seen:
            raise InvalidArgument(f"duplicate input {tensor.name!r}")
        seen.add(tensor.name)
        if tensor.name != INPUT_NAME:
            raise InvalidArgument(f"unknown input {tensor.name!r}; the model takes {INPUT_NAME!r}")
    return request.inputs[0]


def _shape(tensor: kserve.ModelInferRequest.InferInputTensor, limit: int) -> int:
    shape = list(tensor.shape)
    if len(shape) != 3:
        raise InvalidArgument(f"input {INPUT_NAME!r} has shape {shape} (rank {len(shape)}); "
                              "expected [N, 28, 28]")
    if any(d < 0 for d in shape):
        raise InvalidArgument(f"input {INPUT_NAME!r} has a negative dimension: {shape}")
    if shape[1:] != [ROWS, COLS]:
        raise InvalidArgument(f"input {INPUT_NAME!r} has images of {shape[1]}x{shape[2]}; "
                              "expected 28x28")
    _check_count(shape[0], limit)
    return shape[0]


def decode_infer(request: kserve.ModelInferRequest, limit: int) -> np.ndarray:
    """A ModelInfer request's ``images`` input as uint8 [N, 28, 28]."""
    tensor = _input(request)
    raw = request.raw_input_contents
    typed = tensor.HasField("contents")
    if raw and typed:
        raise InvalidArgument("raw_input_contents and typed contents are mixed; use one")
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    if tensor.datatype not in _FIELD_FOR:
        raise InvalidArgument(f"input {INPUT_NAME!r} has datatype {tensor.datatype!r}; expected "
                              "UINT8 (or FP32 pixel values 0..255)")
    n = _shape(tensor, limit)
    count = n * PIXELS
    dtype = np.uint8 if tensor.datatype == "UINT8" else np.dtype("<f4")
    if raw:
        expected = count * np.dtype(dtype).itemsize
        if len(raw[0]) != expected:
            raise InvalidArgument(f"input {INPUT_NAME!r}: {n}x28x28 {tensor.datatype} needs "
                                  f"{expected} bytes, got {len(raw[0])}")
        values = np.frombuffer(raw[0], dtype=dtype)
    elif typed:
        values = _typed(tensor, count)
    else:
        raise InvalidArgument(f"input {INPUT_NAME!r} has no data (neither raw_input_contents nor "
                              "contents)")
    if tensor.datatype == "FP32":
        values = _floats_to_pixels(values, 255.0, f"input {INPUT_NAME!r}")
    return values.reshape(n, ROWS, COLS)


def _typed(tensor: kserve.ModelInferRequest.InferInputTensor, count: int) -> np.ndarray:
    field = _FIELD_FOR[tensor.datatype]
    contents = tensor.contents
    others = [f for f in _TYPED_FIELDS if f != field and len(getattr(contents, f))]
    if others:
        raise InvalidArgument(f"{tensor.datatype} contents go in {field}, not {others[0]}")
    values = getattr(contents, field)
    if len(values) != count:
        raise InvalidArgument(f"input {INPUT_NAME!r}: {field} holds {len(values)} values; the "
                              f"shape needs {count}")
    if tensor.datatype == "FP32":
        return np.asarray(values, dtype=np.float32)
    wide = np.asarray(values, dtype=np.uint32)
    if int(wide.max()) > 255:
        raise InvalidArgument(f"input {INPUT_NAME!r}: UINT8 values must be 0..255; found "
                              f"{int(wide.max())}")
    return wide.astype(np.uint8)


def requested_outputs(request: kserve.ModelInferRequest, available: Sequence[str]) -> list[str]:
    """Output names to return: those asked for (checked), else all of the model's."""
    if not request.outputs:
        return list(available)
    names: list[str] = []
    for out in request.outputs:
        if out.name not in available:
            raise InvalidArgument(f"unknown output {out.name!r}; the model has "
                                  f"{', '.join(map(repr, available))}")
        if out.name in names:
            raise InvalidArgument(f"output {out.name!r} requested twice")
        names.append(out.name)
    return names


def encode_infer(request: kserve.ModelInferRequest, name: str, version: int,
                 outputs: dict[str, np.ndarray], names: Sequence[str]) -> kserve.ModelInferResponse:
    """Outputs as raw little-endian FP32 bytes, as Triton answers."""
    response = kserve.ModelInferResponse(model_name=name, model_version=str(version),
                                         id=request.id)
    for out in names:
        array = outputs[out]
        response.outputs.add(name=out, datatype="FP32", shape=array.shape)
        response.raw_output_contents.append(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return response


def statistics_message(name: str, version: int, stats: Snapshot
                       ) -> kserve.ModelStatistics:
    """Triton's ModelStatistics message from a version's counters."""
    def duration(pair: list[int]) -> kserve.StatisticDuration:
        return kserve.StatisticDuration(count=pair[0], ns=pair[1])

    return kserve.ModelStatistics(
        name=name, version=str(version), last_inference=stats["last_ms"],
        inference_count=stats["images"], execution_count=stats["executions"],
        inference_stats=kserve.InferStatistics(
            success=duration(stats["success"]), fail=duration(stats["fail"]),
            queue=duration(stats["queue"]), compute_infer=duration(stats["infer"])))
