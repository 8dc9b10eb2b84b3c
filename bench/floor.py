"""The gRPC floor for the benchmark: Python's gRPC server with no model behind it.

``python -m bench.floor --port N`` answers Predict and ModelInfer (and their
streams, PredictStream and ModelStreamInfer) on the same stack as the real
server (grpc.aio, the same channel options, upb protobuf): it parses each
request only to count its images and answers a pre-serialized response of the
right shape (uniform probabilities, so the benchmark's answer check passes).
No validation, no batching, no model, no metrics. Server and model metadata
calls answer canned messages, so Triton's perf_analyzer can drive it too. What
it reaches under a load is the most any Python gRPC server could reach on this
machine with that load generator, before it spends a single cycle on the
model. It is a yardstick, not a product.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures

import grpc
import numpy as np

from highway_core.facts import (
    GATE_ACTIVITY,
    IMAGE_SHAPE,
    INPUT_NAME,
    MODEL_NAME,
    NUM_CLASSES,
    PROBABILITIES,
)
from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from protos.inference import model_config_pb2 as mc

GATES = 8  # the shipped model's highway layers


def _predict_answer(n: int) -> bytes:
    response = hw.PredictResponse(model_name="floor", model_version=1)
    for _ in range(n):
        response.predictions.add(digit=0, confidence=0.1, probabilities=[0.1] * NUM_CLASSES)
    return response.SerializeToString()


def _infer_answer(n: int) -> bytes:
    response = kserve.ModelInferResponse(model_name="floor", model_version="1")
    for name, width in ((GATE_ACTIVITY, GATES), (PROBABILITIES, NUM_CLASSES)):
        response.outputs.add(name=name, datatype="FP32", shape=[n, width])
        response.raw_output_contents.append(np.full((n, width), 0.1, "<f4").tobytes())
    return response.SerializeToString()


def _predict_stream_answer(n: int) -> bytes:
    response = hw.PredictResponse.FromString(_predict_answer(n))
    return hw.PredictStreamResponse(response=response).SerializeToString()


def _infer_stream_answer(n: int) -> bytes:
    response = kserve.ModelInferResponse.FromString(_infer_answer(n))
    response.parameters["triton_final_response"].bool_param = True
    return kserve.ModelStreamInferResponse(infer_response=response).SerializeToString()


def _counted(count: Callable[[bytes], int], answer: Callable[[int], bytes]
             ) -> Callable[[bytes], bytes]:
    cache: dict[int, bytes] = {}

    def respond(request: bytes) -> bytes:
        n = count(request)
        if n not in cache:
            cache[n] = answer(n)
        return cache[n]
    return respond


def _model_messages(name: str) -> dict[str, bytes]:
    """What perf_analyzer asks before it infers, shaped like the real model's answers."""
    tensor = kserve.ModelMetadataResponse.TensorMetadata
    metadata = kserve.ModelMetadataResponse(
        name=name, platform="onnxruntime_onnx", versions=["1"],
        inputs=[tensor(name=INPUT_NAME, datatype="UINT8", shape=[-1, *IMAGE_SHAPE])],
        outputs=[tensor(name="gate_activity", datatype="FP32", shape=[-1, GATES]),
                 tensor(name=PROBABILITIES, datatype="FP32", shape=[-1, NUM_CLASSES])])
    config = mc.ModelConfig(
        name=name, platform="onnxruntime_onnx", max_batch_size=4096,
        input=[mc.ModelInput(name=INPUT_NAME, data_type=mc.TYPE_UINT8, dims=IMAGE_SHAPE)],
        output=[mc.ModelOutput(name=PROBABILITIES, data_type=mc.TYPE_FP32, dims=[NUM_CLASSES]),
                mc.ModelOutput(name="gate_activity", data_type=mc.TYPE_FP32, dims=[GATES])])
    return {"ServerLive": kserve.ServerLiveResponse(live=True).SerializeToString(),
            "ServerReady": kserve.ServerReadyResponse(ready=True).SerializeToString(),
            "ServerMetadata": kserve.ServerMetadataResponse(
                name="highway-floor", version="0").SerializeToString(),
            "ModelReady": kserve.ModelReadyResponse(ready=True).SerializeToString(),
            "ModelMetadata": metadata.SerializeToString(),
            "ModelConfig": kserve.ModelConfigResponse(config=config).SerializeToString()}


def _infer_count(request: bytes) -> int:
    message = kserve.ModelInferRequest.FromString(request)
    return int(message.inputs[0].shape[0]) if message.inputs and message.inputs[0].shape else 1


def _responders(model: str) -> dict[str, dict[str, Callable[[bytes], bytes]]]:
    """service → method → (request bytes → response bytes)."""
    canned = {method: (lambda _request, answer=answer: answer)
              for method, answer in _model_messages(model).items()}
    return {
        "highway.v1.Classifier": {"Predict": _counted(
            lambda r: len(hw.PredictRequest.FromString(r).images), _predict_answer)},
        "inference.GRPCInferenceService": {
            "ModelInfer": _counted(_infer_count, _infer_answer), **canned},
    }


def _stream_responders() -> dict[str, dict[str, Callable[[bytes], bytes]]]:
    """service → streaming method → (request bytes → one answer's bytes)."""
    return {
        "highway.v1.Classifier": {"PredictStream": _counted(
            lambda r: len(hw.PredictRequest.FromString(r).images), _predict_stream_answer)},
        "inference.GRPCInferenceService": {
            "ModelStreamInfer": _counted(_infer_count, _infer_stream_answer)},
    }


def _handlers(model: str, sync: bool) -> tuple[grpc.GenericRpcHandler, ...]:
    def wrap(respond: Callable[[bytes], bytes]) -> grpc.RpcMethodHandler:
        if sync:
            return grpc.unary_unary_rpc_method_handler(lambda request, _ctx: respond(request))

        async def handle(request: bytes, _ctx: grpc.aio.ServicerContext) -> bytes:
            return respond(request)
        return grpc.unary_unary_rpc_method_handler(handle)  # bytes in, bytes out

    def wrap_stream(respond: Callable[[bytes], bytes]) -> grpc.RpcMethodHandler:
        """Each request answered in turn: with no model there is nothing to overlap."""
        if sync:
            return grpc.stream_stream_rpc_method_handler(
                lambda requests, _ctx: (respond(r) for r in requests))

        async def handle(requests, _ctx: grpc.aio.ServicerContext):
            async for request in requests:
                yield respond(request)
        return grpc.stream_stream_rpc_method_handler(handle)

    streams = _stream_responders()
    return tuple(grpc.method_handlers_generic_handler(
        service, {**{m: wrap(f) for m, f in methods.items()},
                  **{m: wrap_stream(f) for m, f in streams.get(service, {}).items()}})
        for service, methods in _responders(model).items())


SERVER_OPTIONS = [  # as the real server: large messages, a busy port is an error
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.so_reuseport", 0),
]


async def serve(port: int, model: str = MODEL_NAME) -> tuple[grpc.aio.Server, int]:
    """Starts the floor server (grpc.aio, as the real server) on 127.0.0.1."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers(_handlers(model, sync=False))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


def serve_sync(port: int, workers: int = 16, model: str = MODEL_NAME
               ) -> tuple[grpc.Server, int]:
    """The same on gRPC's synchronous server with a thread pool (as the naive server)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers(_handlers(model, sync=True))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


def _main_sync(port: int) -> int:
    try:
        server, bound = serve_sync(port)
    except RuntimeError:
        print(f"bench.floor: error: cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    return run_until_signal(server, f"floor server (sync) listening on 127.0.0.1:{bound}")


def run_until_signal(server: grpc.Server, banner: str) -> int:
    """Prints ``banner``, serves until SIGTERM/SIGINT, stops within 1 s; returns 0."""
    print(banner, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()
    return 0


async def _main(port: int) -> int:
    try:
        server, bound = await serve(port)
    except RuntimeError:
        print(f"bench.floor: error: cannot listen on 127.0.0.1:{port}", file=sys.stderr)
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
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="gRPC port on 127.0.0.1 (0: any)")
    p.add_argument("--sync", action="store_true",
                   help="gRPC's synchronous server (thread pool) instead of grpc.aio")
    args = p.parse_args(argv)
    return _main_sync(args.port) if args.sync else asyncio.run(_main(args.port))


if __name__ == "__main__":
    sys.exit(main())
