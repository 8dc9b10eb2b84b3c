"""Closed-loop gRPC load for the benchmark: client processes, each running asyncio clients.

A :class:`ClientPool` starts its worker processes once (``spawn``: no forked ONNX
Runtime or gRPC state) and reuses them for every scenario. Each scenario gives
every worker its share of the clients; all of them start at the same monotonic
instant (``CLOCK_MONOTONIC`` is system-wide), run a warm-up, then a fixed
measuring window. Only requests that start *and* finish inside the window count.

Requests are serialized once, up front, and sent through a raw channel method:
the load generator shares the two cores with the server, so it spends no CPU on
building protobuf messages. The first answer of each client is parsed and
checked (shape and content) so a wrong answer cannot pass for a fast one.

Each worker process spreads its clients over ``connections`` gRPC connections
(channels with their own subchannel pool; grpc would otherwise share one
connection between channels to the same target). A server with ``--workers``
needs several: SO_REUSEPORT hands each connection, not each call, to a worker.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import numpy as np

from bench.harness import METHODS, STREAMS, check_answer
from bench.streams import split, stream_client
from server.channels import Transport


@dataclass(frozen=True)
class Scenario:
    """One load pattern: which API, images per request, concurrent closed-loop clients."""

    api: str
    """Predict (highway.v1) or ModelInfer (KServe V2)."""
    images: int
    """Images per request."""
    concurrency: int
    """Clients, each sending its next request as soon as the previous one is answered
    (stream APIs: requests in flight, spread over streams of at most ``depth``)."""
    depth: int = 8
    """Stream APIs only: most requests in flight on one stream."""


@dataclass
class ClientResult:
    """What one worker process measured in the window (latencies in seconds)."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    checked: int = 0
    connections: int = 0


async def _client(call, payload: bytes, api: str, n: int, start: float, end: float,
                  result: ClientResult, timeout: float) -> None:
    first = True
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            return
        try:
            answer = await call(payload, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            t1 = time.perf_counter()
            if start <= t0 and t1 <= end:
                name = e.code().name
                result.errors[name] = result.errors.get(name, 0) + 1
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                await asyncio.sleep(0.01)  # no hot loop against a server that went away
            continue
        t1 = time.perf_counter()
        if first:
            first = False
            try:
                check_answer(api, answer, n)
                result.checked += 1
            except Exception:  # noqa: BLE001 - a wrong answer counts as an error
                result.errors["WRONG_ANSWER"] = result.errors.get("WRONG_ANSWER", 0) + 1
        if start <= t0 and t1 <= end:
            result.latencies.append(t1 - t0)


async def _drive(target: str, scenario: Scenario, payload: bytes, clients: int,
                 connections: int, start: float, end: float, warm_start: float,
                 transport: Transport) -> ClientResult:
    result = ClientResult(connections=min(connections, clients))
    options = [("grpc.max_receive_message_length", 64 << 20),
               ("grpc.max_send_message_length", 64 << 20)]
    if result.connections > 1:
        options.append(("grpc.use_local_subchannel_pool", 1))  # a connection per channel
    channels = [transport.aio_channel(target, options=options)
                for _ in range(result.connections)]
    timeout = end - warm_start + 30
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)),
                               timeout=30)
        if scenario.api in STREAMS:
            loads = [stream_client(channels[i % len(channels)], scenario, payload, depth, start,
                                   end, result, timeout)
                     for i, depth in enumerate(split(clients, scenario.depth))]
        else:
            calls = [ch.unary_unary(METHODS[scenario.api]) for ch in channels]  # bytes in, out
            loads = [_client(calls[i % len(calls)], payload, scenario.api, scenario.images,
                             start, end, result, timeout) for i in range(clients)]
        await asyncio.sleep(max(0.0, warm_start - time.perf_counter()))
        await asyncio.gather(_cpu_in_window(start, end, result), *loads)
    finally:
        await asyncio.gather(*(ch.close() for ch in channels))
    return result


async def _cpu_in_window(start: float, end: float, result: ClientResult) -> None:
    """This process's CPU seconds between ``start`` and ``end`` (the measuring window)."""
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    cpu0 = time.process_time()
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    result.cpu_s = time.process_time() - cpu0


def _worker(conn) -> None:
    """Worker process main loop: (target, scenario, payload, clients, times) → ClientResult."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        target, scenario, payload, clients, connections, warm_start, start, end, transport = job
        if clients == 0:
            conn.send(ClientResult())
            continue
        try:
            conn.send(asyncio.run(_drive(target, scenario, payload, clients, connections,
                                         start, end, warm_start, transport)))
        except Exception as e:  # noqa: BLE001 - reported by the parent
            conn.send(e)


class ClientPool:
    """``processes`` worker processes that share the clients of each scenario."""

    def __init__(self, processes: int):
        ctx = mp.get_context("spawn")
        self._conns = []
        self._procs = []
        for i in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child,), name=f"bench-client-{i}",
                               daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn in self._conns:  # imports done: the first scenario starts on time
            if not conn.poll(120) or conn.recv() != "ready":
                raise RuntimeError("a client worker process did not start")

    def run(self, target: str, scenario: Scenario, payload: bytes, warmup_s: float,
            duration_s: float, on_start: Callable[[], None] | None = None,
            on_end: Callable[[], None] | None = None, connections: int = 1,
            transport: Transport | None = None
            ) -> tuple[ClientResult, float]:
        """Runs one scenario on every worker; returns the merged result and the window length.

        ``connections``: per worker process, at most one per client (0: one per client).
        ``transport``: plain (default) or TLS, as the server speaks.

        ``on_start`` and ``on_end`` are called in this process as the measuring window
        opens and closes (to read the server's CPU time, start a profiler...).
        """
        shares = [scenario.concurrency // len(self._conns)] * len(self._conns)
        for i in range(scenario.concurrency % len(self._conns)):
            shares[i] += 1
        # Leave the workers time to open their channels before the shared start.
        warm_start = time.perf_counter() + 0.5
        start = warm_start + warmup_s
        end = start + duration_s
        for conn, clients in zip(self._conns, shares, strict=True):
            conn.send((target, scenario, payload, clients, connections or clients, warm_start,
                       start, end, transport or Transport()))
        for at, hook in ((start, on_start), (end, on_end)):
            if hook is not None:
                time.sleep(max(0.0, at - time.perf_counter()))
                hook()
        merged = ClientResult()
        for conn in self._conns:
            part = conn.recv()
            if isinstance(part, Exception):
                raise RuntimeError(f"client worker failed: {part!r}")
            merged.latencies.extend(part.latencies)
            merged.cpu_s += part.cpu_s
            merged.checked += part.checked
            merged.connections += part.connections
            for code, count in part.errors.items():
                merged.errors[code] = merged.errors.get(code, 0) + count
        return merged, duration_s

    def close(self) -> None:
        """Stops the workers."""
        for conn in self._conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    """p50/p90/p99 in milliseconds (None without samples)."""
    if not latencies:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None}
    values = np.percentile(np.asarray(latencies) * 1e3, [50, 90, 99])
    return {"p50_ms": float(values[0]), "p90_ms": float(values[1]), "p99_ms": float(values[2])}
