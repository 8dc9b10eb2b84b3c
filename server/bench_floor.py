"""The gRPC floor for the benchmark: Python's gRPC server with no model behind it.

``python -m server.bench_floor --port N`` answers Predict and ModelInfer on the
same stack as the real server (grpc.aio, the same channel options, upb
protobuf): it parses each request only to count its images and answers a
pre-serialized response of the right shape (uniform probabilities, so the
benchmark's answer check passes). No validation, no batching, no model, no
metrics. What it reaches under the benchmark's load is the most any Python
gRPC server could reach on this machine with this load generator, before it
spends a single cycle on the model. It is a yardstick, not a product.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable

import grpc
import numpy as np

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve

CLASSES, GATES = 10, 8


def _predict_answer(n: int) -> bytes:
    response = hw.PredictResponse(model_name="floor", model_version=1)
    for _ in range(n):
        response.predictions.add(digit=0, confidence=0.1, probabilities=[0.1] * CLASSES)
    return response.SerializeToString()


def _infer_answer(n: int) -> bytes:
    response = kserve.ModelInferResponse(model_name="floor", model_version="1")
    for name, width in (("probabilities", CLASSES), ("gate_activity", GATES)):
        response.outputs.add(name=name, datatype="FP32", shape=[n, width])
        response.raw_output_contents.append(np.full((n, width), 0.1, "<f4").tobytes())
    return response.SerializeToString()


def _handler(count: Callable[[bytes], int], answer: Callable[[int], bytes]):
    cache: dict[int, bytes] = {}

    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        n = count(request)
        if n not in cache:
            cache[n] = answer(n)
        return cache[n]
    return grpc.unary_unary_rpc_method_handler(handle)  # bytes in, bytes out


def _infer_count(request: bytes) -> int:
    message = kserve.ModelInferRequest.FromString(request)
    return int(message.inputs[0].shape[0]) if message.inputs and message.inputs[0].shape else 1


async def serve(port: int) -> tuple[grpc.aio.Server, int]:
    """Starts the floor server on 127.0.0.1; returns it and its port."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20),
                                      ("grpc.max_send_message_length", 64 << 20),
                                      ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("highway.v1.Classifier", {
            "Predict": _handler(lambda r: len(hw.PredictRequest.FromString(r).images),
                                _predict_answer)}),
        grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {
            "ModelInfer": _handler(_infer_count, _infer_answer)}),
    ))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


async def _main(port: int) -> int:
    try:
        server, bound = await serve(port)
    except RuntimeError:
        print(f"bench_floor: error: cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print(f"floor server listening on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serves until SIGTERM/SIGINT; exit 1 with one line if it cannot start."""
    p = argparse.ArgumentParser(prog="python -m server.bench_floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="gRPC port on 127.0.0.1 (0: any)")
    return asyncio.run(_main(p.parse_args(argv).port))


if __name__ == "__main__":
    sys.exit(main())
