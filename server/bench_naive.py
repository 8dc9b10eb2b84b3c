"""The naive baseline for the benchmark: one ONNX Runtime run per request, no batching.

``python -m server.bench_naive --model FILE --port N`` serves Predict and
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
import numpy as np

from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from server import codecs
from server.bench_floor import run_until_signal
from server.errors import ServingError, StartupError
from server.runtime import create_session


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


class _Model:
    def __init__(self, settings: NaiveSettings):
        self.session = create_session(settings.model, settings.device, settings.intra_op_threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.limit = settings.max_request_images

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        results = self.session.run(self.output_names, {self.input_name: images})
        return dict(zip(self.output_names, results, strict=True))


def _guard(handler):
    """Answers ServingError with its status code, as the real server does."""
    def wrapped(self, request, context):
        try:
            return handler(self, request, context)
        except ServingError as e:
            context.abort(grpc.StatusCode[e.code], e.message)
    return wrapped


class _Classifier(hw_grpc.ClassifierServicer):
    def __init__(self, model: _Model):
        self.model = model

    @_guard
    def Predict(self, request, context):  # noqa: N802 - gRPC names
        images = codecs.decode_predict(request, self.model.limit)
        return codecs.encode_predict(request.model_name, 1, self.model.run(images),
                                     request.return_gate_activity)


class _Inference(kserve_grpc.GRPCInferenceServiceServicer):
    def __init__(self, model: _Model):
        self.model = model

    @_guard
    def ModelInfer(self, request, context):  # noqa: N802 - gRPC names
        images = codecs.decode_infer(request, self.model.limit)
        names = codecs.requested_outputs(request, self.model.output_names)
        return codecs.encode_infer(request, request.model_name, 1, self.model.run(images), names)


def serve(settings: NaiveSettings) -> tuple[grpc.Server, int]:
    """Starts the naive server; returns it and its port."""
    model = _Model(settings)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.workers),
                         options=[("grpc.max_receive_message_length", 64 << 20),
                                  ("grpc.max_send_message_length", 64 << 20),
                                  ("grpc.so_reuseport", 0)])
    hw_grpc.add_ClassifierServicer_to_server(_Classifier(model), server)
    kserve_grpc.add_GRPCInferenceServiceServicer_to_server(_Inference(model), server)
    port = server.add_insecure_port(f"127.0.0.1:{settings.port}")
    server.start()
    return server, port


def main(argv: list[str] | None = None) -> int:
    """Serves until SIGTERM/SIGINT; exit 1 with one line if it cannot start."""
    p = argparse.ArgumentParser(prog="python -m server.bench_naive", description=__doc__)
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
        print(f"bench_naive: error: {e}", file=sys.stderr)
        return 1
    return run_until_signal(server, f"naive server listening on 127.0.0.1:{port}")


if __name__ == "__main__":
    sys.exit(main())
