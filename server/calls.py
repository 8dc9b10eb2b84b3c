"""The one path every RPC takes: decode guard, counting, timing, draining, aborting.

:meth:`Calls.run` wraps each handler: it refuses new calls once shutdown has
begun, turns a :class:`ServingError` into ``context.abort`` with its status
code, answers unknown exceptions INTERNAL (traceback in the log, not to the
client), and records every call in the metrics under its final status code.
Streams (:mod:`server.streams`) keep the same books per request through
:meth:`Calls.enter`/:meth:`Calls.leave`, and are told when draining starts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc

from server.errors import InvalidArgument, ServingError, Unavailable
from server.metrics import Metrics

log = logging.getLogger(__name__)
INTERNAL_MESSAGE = "internal error; the server log has the details"


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
        except Exception as e:  # noqa: BLE001 - DecodeError, and anything else upb may raise
            return Undecodable(message, str(e) or type(e).__name__)
    return deserialize


def service_handler(servicer: object, service: Any) -> grpc.GenericRpcHandler:
    """Generic handlers for every method of ``service`` (a ServiceDescriptor).

    Unary methods, and bidirectional streams (``@stream`` in :mod:`server.streams`).
    """
    from google.protobuf.message_factory import GetMessageClass

    handlers = {}
    for method in service.methods:
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        kind = (grpc.stream_stream_rpc_method_handler if method.client_streaming
                else grpc.unary_unary_rpc_method_handler)
        handlers[method.name] = kind(
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


def check_decoded(request: Any) -> None:
    """INVALID_ARGUMENT for a request whose bytes did not parse (see :func:`lenient`)."""
    if isinstance(request, Undecodable):
        raise InvalidArgument(f"the request is not a valid {request.message} "
                              f"message: {request.error}")


def expired(context: grpc.aio.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


class Drainable(Protocol):
    """An open stream: told once when the server starts draining."""

    def drain(self) -> None: ...


class Calls:
    """Counts, times and guards every RPC; tracks the ones in progress for draining.

    ``active`` counts requests being handled (unary calls and requests on
    streams); ``streams`` the open streams. ``idle`` is set when both are none.
    """

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.ready = False
        self._draining = False
        self.active = 0
        self.streams: set[Drainable] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        # One process: read at scrape time. Workers: the value must sit in the shared
        # file the supervisor merges, so it is counted up and down as calls come and go.
        self._inflight = metrics.inflight if metrics.multiprocess else None
        self._open_streams = metrics.open_streams if metrics.multiprocess else None
        if not metrics.multiprocess:
            metrics.inflight.set_function(lambda: self.active)
            metrics.open_streams.set_function(lambda: len(self.streams))

    @property
    def draining(self) -> bool:
        """Once set, new calls get UNAVAILABLE and open streams are told to wind down."""
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        if value:
            for stream in list(self.streams):
                stream.drain()

    def enter(self) -> None:
        """A request is being handled (pair with :meth:`leave`)."""
        self.active += 1
        self.idle.clear()
        if self._inflight is not None:
            self._inflight.inc()

    def leave(self) -> None:
        self.active -= 1
        if self._inflight is not None:
            self._inflight.dec()
        if self.active == 0 and not self.streams:
            self.idle.set()

    def open_stream(self, stream: Drainable) -> None:
        """A stream is open (pair with :meth:`close_stream`)."""
        self.streams.add(stream)
        self.idle.clear()
        if self._open_streams is not None:
            self._open_streams.inc()

    def close_stream(self, stream: Drainable) -> None:
        if stream in self.streams:
            self.streams.discard(stream)
            if self._open_streams is not None:
                self._open_streams.dec()
        if self.active == 0 and not self.streams:
            self.idle.set()

    async def run(self, method: str, request: Any, context: grpc.aio.ServicerContext,
                  handler: Callable[[], Awaitable[Any]]) -> Any:
        start = time.perf_counter()
        code, message = "OK", ""
        self.enter()
        try:
            if self.draining:
                raise Unavailable("the server is shutting down")
            check_decoded(request)
            response = await handler()
            if expired(context):  # finished too late: grpc drops the answer
                code = "DEADLINE_EXCEEDED"
            return response
        except ServingError as e:
            code, message = e.code, e.message
        except asyncio.CancelledError:
            # grpc cancels the handler both for a client's cancel and a passed deadline.
            code = "DEADLINE_EXCEEDED" if expired(context) else "CANCELLED"
            raise
        except Exception:
            log.exception("%s failed", method)
            code, message = "INTERNAL", INTERNAL_MESSAGE
        finally:
            self.leave()
            self.metrics.observe_request(method, code, time.perf_counter() - start)
        await context.abort(grpc.StatusCode[code], message)
