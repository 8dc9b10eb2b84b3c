"""Closed-loop load over bidirectional streams: several requests in flight per stream.

A scenario's concurrency is the number of requests in flight in all; each
client process opens as many streams as it needs to keep at most
``Scenario.depth`` of its share on each. A stream writes ``depth`` requests,
then writes the next one each time an answer arrives. Answers come in request
order, so the oldest send time is the answer's: latency is send to answer, and
it counts only when both fall inside the measuring window, as for unary loads.
Every answer is looked at for its own error (which does not end a stream); each
stream's first answer is checked in full. A stream that ends with a gRPC status
before the window closes is counted by that status and reopened.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

import grpc

from bench.harness import STREAMS, check_answer, stream_error

if TYPE_CHECKING:
    from bench.load import ClientResult, Scenario


def split(total: int, most: int) -> list[int]:
    """``total`` requests in flight over the fewest streams of at most ``most`` each, evenly."""
    if total <= 0:
        return []
    streams = -(-total // most)
    return [total // streams + (1 if i < total % streams else 0) for i in range(streams)]


def _count(result: ClientResult, code: str) -> None:
    result.errors[code] = result.errors.get(code, 0) + 1


async def stream_client(channel: grpc.aio.Channel, scenario: Scenario, payload: bytes,
                        depth: int, start: float, end: float, result: ClientResult,
                        timeout: float) -> None:
    """Keeps ``depth`` requests in flight on one stream (reopened if it fails) until ``end``."""
    api, n = scenario.api, scenario.images
    method = channel.stream_stream(STREAMS[api])  # bytes in, bytes out
    first = True
    while time.perf_counter() < end:
        stream = method(timeout=timeout)
        sent: deque[float] = deque()
        try:
            for _ in range(depth):
                sent.append(time.perf_counter())
                await stream.write(payload)
            while sent:
                answer = await stream.read()
                t1 = time.perf_counter()
                if answer is grpc.aio.EOF:
                    raise RuntimeError(f"{api}: the server ended the stream with "
                                       f"{len(sent)} requests unanswered")
                t0 = sent.popleft()
                counted = start <= t0 and t1 <= end
                if first:
                    first = False
                    try:
                        check_answer(api, answer, n)
                        result.checked += 1
                    except ValueError:
                        _count(result, "WRONG_ANSWER")
                        counted = False
                code = stream_error(api, answer)
                if code is not None:
                    if counted:
                        _count(result, code)
                elif counted:
                    result.latencies.append(t1 - t0)
                if t1 < end:
                    sent.append(time.perf_counter())
                    await stream.write(payload)
            await stream.done_writing()
            if await stream.read() is not grpc.aio.EOF:  # raises on a status other than OK
                raise RuntimeError(f"{api}: an answer for no request")
        except grpc.aio.AioRpcError as e:
            if time.perf_counter() <= end:
                _count(result, e.code().name)
            await asyncio.sleep(0.01)  # no hot loop against a server that went away
