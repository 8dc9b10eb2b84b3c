"""The naive baseline for the benchmark: one ONNX Runtime run per request, no batching.

``python -m bench.naive --model FILE --port N`` serves Predict and
ModelInfer the way a first attempt would: gRPC's synchronous server with a
thread pool, each handler decoding its request (with the real server's codecs,
so validation costs the same), running the session once on its own images and
encoding the answer. Same session options as the real server. It is a yardstick,
not a product: no metrics, no health, no drain.
"""

from __future__ import annotations

import argparse
import sys
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.floor import SERVER_OPTIONS, run_until_signal
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from server import codecs
from server.errors import ServingError, StartupError
from server.runtime import Runtime


@dataclass(frozen=True)
class NaiveSettings:
    """How the naive server runs."""

    model: Path
    """The model.onnx to serve."""
    port: int = 0
    """gRPC port on 127.0.0.1 (0: any free port, printed on stdout)."""
    device: str = "cpu"
    """ONNX Runtime device, as for the real server."""
    intra_op_threads: int = 0
    """ONNX Runtime intra-op threads (0: one per core), as for the real server."""
    workers: int = 16
    """gRPC handler threads: concurrent requests each run the model on their own."""
    max_request_images: int = 4096
    """Most images per request."""


def _guard(handler):
    """Answers ServingError with its status code, as the real server does."""
    def wrapped(self, request, context):
        try:
            return handler(self, request, context)
        except ServingError as e:
            context.abort(grpc.StatusCode[e.code], e.message)
    return wrapped


class _Naive(hw_grpc.ClassifierServicer, kserve_grpc.GRPCInferenceServiceServicer):
    """Predict and ModelInfer, each running the model once on its own request."""

    def __init__(self, model: Runtime, limit: int):
        self.model = model
        self.limit = limit

    @_guard
    def Predict(self, request, context):  # noqa: N802 - gRPC names
        images = codecs.decode_predict(request, self.limit)
        return codecs.encode_predict(request.model_name, 1, self.model.run(images),
                                     request.return_gate_activity)

    @_guard
    def ModelInfer(self, request, context):  # noqa: N802 - gRPC names
        images = codecs.decode_infer(request, self.limit)
        names = codecs.requested_outputs(request, self.model.output_names)
        return codecs.encode_infer(request, request.model_name, 1, self.model.run(images), names)


def serve(settings: NaiveSettings) -> tuple[grpc.Server, int]:
    """Starts the naive server; returns it and its port."""
    naive = _Naive(Runtime(settings.model, settings.device, settings.intra_op_threads),
                   settings.max_request_images)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.workers),
                         options=SERVER_OPTIONS)
    hw_grpc.add_ClassifierServicer_to_server(naive, server)
    kserve_grpc.add_GRPCInferenceServiceServicer_to_server(naive, server)
    port = server.add_insecure_port(f"127.0.0.1:{settings.port}")
    server.start()
    return server, port


def main(argv: list[str] | None = None) -> int:
    """Serves until SIGTERM/SIGINT; exit 1 with one line if it cannot start."""
    p = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__)
    p.add_argument("--model", type=Path, required=True, help="model.onnx to serve")
    p.add_argument("--port", type=int, default=0, help="gRPC port on 127.0.0.1 (0: any)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--intra-op-threads", type=int, default=0, help="ORT threads (0: cores)")
    p.add_argument("--workers", type=int, default=16, help="gRPC handler threads")
    args = p.parse_args(argv)
    try:
        server, port = serve(NaiveSettings(args.model, args.port, args.device,
                                           args.intra_op_threads, args.workers))
    except (StartupError, RuntimeError) as e:
        print(f"bench.naive: error: {e}", file=sys.stderr)
        return 1
    return run_until_signal(server, f"naive server listening on 127.0.0.1:{port}")


if __name__ == "__main__":
    sys.exit(main())
