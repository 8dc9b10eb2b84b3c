"""The one path every RPC takes: decode guard, counting, timing, draining, aborting.

:meth:`Calls.run` wraps each handler: it refuses new calls once shutdown has
begun, turns a :class:`ServingError` into ``context.abort`` with its status
code, answers unknown exceptions INTERNAL (traceback in the log, not to the
client), and records every call in the metrics under its final status code.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from server.errors import InvalidArgument, ServingError, Unavailable
from server.metrics import Metrics

log = logging.getLogger(__name__)


class Undecodable:
    """Stands in for a request whose bytes do not parse as its protobuf message."""

    __slots__ = ("message", "error")

    def __init__(self, message: str, error: str):
        self.message = message
        self.error = error


def lenient(parse: Callable[[bytes], Any], message: str) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: bad bytes become :class:`Undecodable`.

    grpcio answers a deserializer's exception with UNKNOWN and a logged traceback,
    outside any handler; this way the handler answers INVALID_ARGUMENT and counts it.
    """
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as e:  # DecodeError, and anything else upb may raise
            return Undecodable(message, str(e) or type(e).__name__)
    return deserialize


def service_handler(servicer: object, service: Any) -> grpc.GenericRpcHandler:
    """Generic handlers for every unary method of ``service`` (a ServiceDescriptor)."""
    from google.protobuf.message_factory import GetMessageClass

    handlers = {}
    for method in service.methods:
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=lenient(request_class.FromString, method.input_type.full_name),
            response_serializer=response_class.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def rpc(handler: Callable[[Any, Any], Awaitable[Any]]):
    """Turns ``async def Name(self, request)`` into a gRPC method run by ``self._calls``.

    The method's own name is its label in the metrics, so the two cannot drift apart.
    """
    name = handler.__name__

    @functools.wraps(handler)
    async def method(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._calls.run(name, request, context, lambda: handler(self, request))
    return method


def _expired(context: grpc.aio.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


class Calls:
    """Counts, times and guards every RPC; tracks the ones in progress for draining."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.ready = False
        self.draining = False
        self.active = 0
        self.idle = asyncio.Event()
        self.idle.set()
        # One process: read at scrape time. Workers: the value must sit in the shared
        # file the supervisor merges, so it is counted up and down as calls come and go.
        self._inflight = metrics.inflight if metrics.multiprocess else None
        if self._inflight is None:
            metrics.inflight.set_function(lambda: self.active)

    async def run(self, method: str, request: Any, context: grpc.aio.ServicerContext,
                  handler: Callable[[], Awaitable[Any]]) -> Any:
        start = time.perf_counter()
        code, message = "OK", ""
        self.active += 1
        self.idle.clear()
        if self._inflight is not None:
            self._inflight.inc()
        try:
            if self.draining:
                raise Unavailable("the server is shutting down")
            if isinstance(request, Undecodable):
                raise InvalidArgument(f"the request is not a valid {request.message} "
                                      f"message: {request.error}")
            response = await handler()
            if _expired(context):  # finished too late: grpc drops the answer
                code = "DEADLINE_EXCEEDED"
            return response
        except ServingError as e:
            code, message = e.code, e.message
        except asyncio.CancelledError:
            # grpc cancels the handler both for a client's cancel and a passed deadline.
            code = "DEADLINE_EXCEEDED" if _expired(context) else "CANCELLED"
            raise
        except Exception:
            log.exception("%s failed", method)
            code, message = "INTERNAL", "internal error; the server log has the details"
        finally:
            self.active -= 1
            if self._inflight is not None:
                self._inflight.dec()
            if self.active == 0:
                self.idle.set()
            self.metrics.observe_request(method, code, time.perf_counter() - start)
        await context.abort(grpc.StatusCode[code], message)
