"""Bidirectional streams: many requests in flight on one call, answered in order.

``@stream(answer, failure)`` turns ``async def Name(self, request) -> response``
(the same per-request code a unary handler runs) into a stream handler:

- a reader task takes requests off the stream as they come and starts each at
  once, so they meet other requests in the batcher while earlier ones wait; at
  most ``max_queue`` per stream are in flight, then reading pauses and HTTP/2
  flow control pushes back on the client;
- the handler writes one response per request, in request order;
- a request that fails (bad input, RESOURCE_EXHAUSTED, unknown model...) gets
  its own response, built by ``failure``, and the stream goes on.

Only whole-call events end a stream: the client's half-close (status OK once
every request read is answered), its cancellation or deadline (pending
requests dropped, their queued work never runs), and the server's drain
(requests already read are answered, then UNAVAILABLE). Each request is
counted and timed like a unary call under the method's name, from being read
to its response being written; ``highway_open_streams`` counts the streams.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from protos.highway.v1 import classifier_pb2 as hw
from protos.inference import grpc_service_pb2 as kserve
from server.calls import INTERNAL_MESSAGE, Calls, check_decoded, expired
from server.errors import ServingError

log = logging.getLogger(__name__)

Answer = Callable[[Any, Any], Any]
"""(request, unary response) → the stream's response message."""
Failure = Callable[[Any, str, str], Any]
"""(request, status code name, message) → the stream's response message."""

_EOF = "eof"  # the client half-closed: answer what was read, then OK
_DRAIN = "drain"  # the server is shutting down: answer what was read, then UNAVAILABLE
_BROKEN = "broken"  # reading failed: the call is gone


def stream(answer: Answer, failure: Failure):
    """Decorates ``async def Name(self, request)`` of a servicer with ``_calls`` and ``_s``."""
    def decorate(handler: Callable[[Any, Any], Awaitable[Any]]):
        name = handler.__name__

        @functools.wraps(handler)
        async def method(self, requests: Any, context: grpc.aio.ServicerContext) -> None:
            one = functools.partial(handler, self)
            await Stream(self._calls, name, context, one, answer, failure,
                         window=self._s.settings.max_queue).run()
        return method
    return decorate


class Stream:
    """One open stream: a reader task feeding an ordered queue the handler writes from."""

    def __init__(self, calls: Calls, method: str, context: grpc.aio.ServicerContext,
                 handle: Callable[[Any], Awaitable[Any]], answer: Answer, failure: Failure,
                 window: int):
        self._calls = calls
        self._method = method
        self._context = context
        self._handle = handle
        self._answer = answer
        self._failure = failure
        self._room = asyncio.Semaphore(window)
        # (task, read time) per request in order, then one of the end markers.
        self._queue: asyncio.Queue = asyncio.Queue()
        self._writing: tuple[asyncio.Task, float] | None = None

    def drain(self) -> None:
        """Called by :class:`Calls` when draining starts: stop taking requests."""
        self._queue.put_nowait(_DRAIN)

    async def run(self) -> None:
        calls, context = self._calls, self._context
        if calls.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        calls.open_stream(self)
        reader = asyncio.ensure_future(self._read())
        try:
            end = await self._write()
        finally:
            reader.cancel()
            self._drop_pending()
            calls.close_stream(self)
        if end == _DRAIN:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if end == _BROKEN:
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

    async def _read(self) -> None:
        calls, queue = self._calls, self._queue
        try:
            while True:
                await self._room.acquire()
                request = await self._context.read()
                if request is grpc.aio.EOF:
                    queue.put_nowait(_EOF)
                    return
                if calls.draining:  # not accepted; the writer ends at the _DRAIN marker
                    return
                calls.enter()
                queue.put_nowait((asyncio.ensure_future(self._one(request)),
                                  time.perf_counter()))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the call itself failed; end the stream
            log.exception("%s: reading the stream failed", self._method)
            queue.put_nowait(_BROKEN)

    async def _one(self, request: Any) -> tuple[Any, str]:
        """One request's response message and status code name; never raises (but cancel)."""
        try:
            check_decoded(request)
            return self._answer(request, await self._handle(request)), "OK"
        except ServingError as e:
            return self._failure(request, e.code, e.message), e.code
        except Exception:  # noqa: BLE001 - one request fails, the stream goes on
            log.exception("%s failed", self._method)
            return self._failure(request, "INTERNAL", INTERNAL_MESSAGE), "INTERNAL"

    async def _write(self) -> str:
        """Writes responses in request order until an end marker; returns the marker."""
        queue, write, calls = self._queue, self._context.write, self._calls
        observe = calls.metrics.observe_request
        while True:
            entry = await queue.get()
            if isinstance(entry, str):
                return entry
            self._writing = entry
            task, started = entry
            message, code = await task
            await write(message)
            self._writing = None
            calls.leave()
            observe(self._method, code, time.perf_counter() - started)
            self._room.release()

    def _drop_pending(self) -> None:
        """Cancels and counts every request read but not answered (cancel, deadline)."""
        pending = [self._writing] if self._writing is not None else []
        while not self._queue.empty():
            entry = self._queue.get_nowait()
            if not isinstance(entry, str):
                pending.append(entry)
        if not pending:
            return
        code = "DEADLINE_EXCEEDED" if expired(self._context) else "CANCELLED"
        now = time.perf_counter()
        for task, started in pending:
            task.cancel()  # its batcher future is cancelled: queued work never runs
            self._calls.leave()
            self._calls.metrics.observe_request(self._method, code, now - started)
        self._writing = None


# The two APIs' stream messages.

def infer_answer(request: kserve.ModelInferRequest, response: kserve.ModelInferResponse
                 ) -> kserve.ModelStreamInferResponse:
    """Triton's shape: the unary response, marked final (the model is not decoupled)."""
    response.parameters["triton_final_response"].bool_param = True
    return kserve.ModelStreamInferResponse(infer_response=response)


def infer_failure(request: Any, code: str, message: str) -> kserve.ModelStreamInferResponse:
    """``error_message`` "CODE: message", and the request's id so a client can match it."""
    response = kserve.ModelInferResponse(
        model_name=getattr(request, "model_name", ""),
        model_version=getattr(request, "model_version", ""), id=getattr(request, "id", ""))
    response.parameters["triton_final_response"].bool_param = True
    return kserve.ModelStreamInferResponse(error_message=f"{code}: {message}",
                                           infer_response=response)


def predict_answer(request: hw.PredictRequest, response: hw.PredictResponse
                   ) -> hw.PredictStreamResponse:
    return hw.PredictStreamResponse(id=request.id, response=response)


def predict_failure(request: Any, code: str, message: str) -> hw.PredictStreamResponse:
    return hw.PredictStreamResponse(id=getattr(request, "id", ""),
                                    error=hw.Error(code=code, message=message))
