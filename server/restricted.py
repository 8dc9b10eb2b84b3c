"""Restricted call categories, as Triton's ``--grpc-restricted-protocol``.

``CATEGORY[,CATEGORY...]:KEY=VALUE`` (repeatable): every call in one of those
categories must carry the header KEY with exactly VALUE, or it is refused with
PERMISSION_DENIED. The refusal names the header, never the value; the value is
compared in constant time (:func:`hmac.compare_digest`) and never logged or
shown in a ``repr``.

Every method the server answers belongs to one category (:data:`CATEGORIES`);
a method of a known service missing from the table falls back to the most
protected reading of its service (:data:`SERVICE_DEFAULTS`), so a call added
later is never left open by accident.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import grpc

# Triton's categories, in Triton's words.
KNOWN = ("health", "metadata", "inference", "shared-memory", "model-config",
         "model-repository", "statistics", "trace", "logging")

CATEGORIES = {
    # grpc.health.v1 and KServe V2 liveness/readiness
    "/grpc.health.v1.Health/Check": "health",
    "/grpc.health.v1.Health/Watch": "health",
    "/inference.GRPCInferenceService/ServerLive": "health",
    "/inference.GRPCInferenceService/ServerReady": "health",
    "/inference.GRPCInferenceService/ModelReady": "health",
    # what is served and how it looks
    "/inference.GRPCInferenceService/ServerMetadata": "metadata",
    "/inference.GRPCInferenceService/ModelMetadata": "metadata",
    "/highway.v1.Classifier/GetModelInfo": "metadata",
    # running the model
    "/inference.GRPCInferenceService/ModelInfer": "inference",
    "/inference.GRPCInferenceService/ModelStreamInfer": "inference",
    "/highway.v1.Classifier/Predict": "inference",
    # Triton's administrative extensions
    "/inference.GRPCInferenceService/ModelConfig": "model-config",
    "/inference.GRPCInferenceService/ModelStatistics": "statistics",
    "/inference.GRPCInferenceService/RepositoryIndex": "model-repository",
    "/inference.GRPCInferenceService/RepositoryModelLoad": "model-repository",
    "/inference.GRPCInferenceService/RepositoryModelUnload": "model-repository",
    "/inference.GRPCInferenceService/SystemSharedMemoryStatus": "shared-memory",
    "/inference.GRPCInferenceService/SystemSharedMemoryRegister": "shared-memory",
    "/inference.GRPCInferenceService/SystemSharedMemoryUnregister": "shared-memory",
    "/inference.GRPCInferenceService/CudaSharedMemoryStatus": "shared-memory",
    "/inference.GRPCInferenceService/CudaSharedMemoryRegister": "shared-memory",
    "/inference.GRPCInferenceService/CudaSharedMemoryUnregister": "shared-memory",
    "/inference.GRPCInferenceService/TraceSetting": "trace",
    "/inference.GRPCInferenceService/LogSettings": "logging",
}
SERVICE_DEFAULTS = {
    "grpc.health.v1.Health": "health",
    # Reflection describes the services: metadata.
    "grpc.reflection.v1alpha.ServerReflection": "metadata",
    "grpc.reflection.v1.ServerReflection": "metadata",
    "highway.v1.Classifier": "inference",
    "inference.GRPCInferenceService": "inference",
}
# gRPC metadata keys: lower-case token characters; "-bin" keys carry bytes, "grpc-" is reserved.
_KEY = re.compile(r"[0-9a-z_.-]+")
_VALUE = re.compile(r"[\x20-\x7e]+")


def category(method: str) -> str | None:
    """The category of a full method name ``/package.Service/Method`` (None: unknown service)."""
    known = CATEGORIES.get(method)
    if known is not None:
        return known
    return SERVICE_DEFAULTS.get(method.lstrip("/").partition("/")[0])


@dataclass(frozen=True)
class Restriction:
    """One header that a set of categories requires; ``repr`` hides the value."""

    categories: frozenset[str]
    key: str
    value: bytes = field(repr=False)

    def allows(self, received: Iterable[str | bytes]) -> bool:
        """True iff one of the header's received values equals ours (constant time each)."""
        ok = False
        for candidate in received:
            raw = candidate if isinstance(candidate, bytes) else candidate.encode()
            ok |= hmac.compare_digest(raw, self.value)
        return ok


def parse_groups(specs: Sequence[str]) -> tuple[Restriction, ...]:
    """Parses the flag's values; ValueError names the problem but never the value."""
    restrictions, taken = [], set()
    for spec in specs:
        names, colon, pair = spec.partition(":")
        key, equals, value = pair.partition("=")
        key = key.strip().lower()
        if not colon or not equals:
            raise ValueError("--grpc-restricted-protocol takes CATEGORY[,CATEGORY...]:KEY=VALUE")
        categories = [n.strip() for n in names.split(",") if n.strip()]
        for name in categories:
            if name not in KNOWN:
                raise ValueError(f"--grpc-restricted-protocol: unknown category {name!r} "
                                 f"(known: {', '.join(KNOWN)})")
            if name in taken:
                raise ValueError(f"--grpc-restricted-protocol: category {name!r} is restricted "
                                 "twice")
            taken.add(name)
        if not categories:
            raise ValueError("--grpc-restricted-protocol: no category before ':'")
        if not _KEY.fullmatch(key) or key.startswith("grpc-") or key.endswith("-bin"):
            raise ValueError(f"--grpc-restricted-protocol: {key!r} is not a usable header name "
                             "(lower-case letters, digits, '-', '_', '.'; not grpc-*, not *-bin)")
        if not _VALUE.fullmatch(value):
            raise ValueError(f"--grpc-restricted-protocol: the value for header {key!r} must be "
                             "printable ASCII and not empty")
        restrictions.append(Restriction(frozenset(categories), key, value.encode()))
    return tuple(restrictions)


class RestrictedCalls(grpc.aio.ServerInterceptor):
    """Refuses calls of a restricted category that lack the right header."""

    def __init__(self, restrictions: Sequence[Restriction],
                 on_denied: Callable[[str], None] = lambda category: None):
        self._by_category = {c: r for r in restrictions for c in r.categories}
        self._on_denied = on_denied

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler | None]],
            details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        name = category(details.method)
        restriction = self._by_category.get(name) if name else None
        if handler is None or restriction is None:
            return handler
        received = [v for k, v in details.invocation_metadata or () if k == restriction.key]
        if restriction.allows(received):
            return handler
        self._on_denied(name)
        return _denied(handler, f"this call is in the restricted category '{name}': it needs "
                                f"the header '{restriction.key}' with the right value")


def _denied(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers PERMISSION_DENIED."""
    async def deny(request_or_iterator, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    async def deny_stream(request_or_iterator, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
        yield  # pragma: no cover - makes this an async generator, as streaming handlers are

    codecs = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_stream, **codecs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny, **codecs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny_stream, **codecs)
    return grpc.unary_unary_rpc_method_handler(deny, **codecs)
