"""``--workers 2``: real processes on one port, one merged /metrics, drain, and failure.

Each test starts ``python -m server --workers 2`` as an operator would and
talks to it over real gRPC connections. SO_REUSEPORT spreads connections, not
calls, so every client below opens its own connection (a local subchannel pool:
grpc would otherwise share one connection between channels to the same target).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc

from bench.harness import check_answer
from protos.inference import grpc_service_pb2 as kserve
from protos.inference import grpc_service_pb2_grpc
from tests.polling import metrics_text, scrape, wait_until
from tests.reliability.support import (
    GRPC_OPTIONS,
    infer_bytes,
    raw_call,
    requests_by_code,
    running_server,
    wait_until_idle,
)

CONNECTIONS = 24  # all on one worker by chance: 2 × 2^-24
WORKERS = ("--workers", "2", "--log-level", "INFO")


def connection(server) -> grpc.Channel:
    """A channel with a connection of its own."""
    return grpc.insecure_channel(
        server.target, options=[*GRPC_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])


def worker_pids(samples: dict) -> dict[str, int]:
    """{worker index: pid} from the merged highway_worker_ready series."""
    return {dict(labels)["worker"]: int(dict(labels)["pid"])
            for (name, labels), value in samples.items()
            if name == "highway_worker_ready" and value == 1}


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(value for (n, ls), value in samples.items()
               if n == name and labels.items() <= dict(ls).items())


def statistics(ch: grpc.Channel) -> tuple[int, int]:
    """(inference_count, successful requests) of the model from ModelStatistics."""
    stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(ch)
    [stats] = stub.ModelStatistics(kserve.ModelStatisticsRequest(name="highway_mnist"),
                                   timeout=10).model_stats
    return stats.inference_count, stats.inference_stats.success.count


def gone(pid: int) -> bool:
    """True once the process no longer runs (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_two_workers_share_the_port_and_the_merged_metrics_add_up(tiny_repository, tmp_path):
    with running_server(tiny_repository, *WORKERS, log=tmp_path / "server.log") as server:
        server.wait_serving(60)
        before = wait_until_idle(server)
        per_connection = 3
        for _ in range(CONNECTIONS):
            with connection(server) as ch:
                call = raw_call(ch, "ModelInfer")
                for _ in range(per_connection):
                    check_answer("ModelInfer", call(infer_bytes(2), timeout=30), 2)
        after = wait_until_idle(server)
        text = metrics_text(server.metrics_port)
        # ModelStatistics speaks for the server: any connection, either worker, all counts.
        images, ok = total(after, "highway_images_total"), requests_by_code(after, "ModelInfer")
        for _ in range(8):  # both workers answer one of these but with odds 2^-7
            with connection(server) as ch:
                wait_until(lambda: statistics(ch) == (images, ok["OK"]),
                           f"ModelStatistics counting {images:g} images, {ok['OK']} requests")

    if shutil.which("promtool"):  # as tests/server/test_metrics.py checks one process's
        done = subprocess.run(["promtool", "check", "metrics"], input=text,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    sent = CONNECTIONS * per_connection
    ok = requests_by_code(after, "ModelInfer").get("OK", 0)
    assert ok - requests_by_code(before, "ModelInfer").get("OK", 0) == sent
    assert total(after, "highway_images_total") - total(before, "highway_images_total") == 2 * sent
    shares = {w: total(after, "highway_worker_requests_total", worker=w)
              - total(before, "highway_worker_requests_total", worker=w) for w in ("0", "1")}
    assert all(share > 0 for share in shares.values()), f"one worker got nothing: {shares}"
    assert sum(shares.values()) == sent
    pids = worker_pids(after)
    assert sorted(pids) == ["0", "1"] and len(set(pids.values())) == 2
    assert server.proc.pid not in pids.values()
    # Gauges merge as declared: one model_info series and one in-flight sum, not one per pid.
    assert [ls for (n, ls) in after if n == "highway_model_info"] == [
        (("model", "highway_mnist"), ("provider", "CPUExecutionProvider"), ("version", "1"))]
    assert [ls for (n, ls) in after if n == "highway_inflight_requests"] == [()]


def test_gate_metrics_drift_and_queue_depth_reach_the_merged_metrics(tiny_repository,
                                                                     tmp_path):
    # A small window scored at every copy: each worker scores drift after 10 images.
    args = (*WORKERS, "--drift-window", "10", "--drift-interval-s", "0")
    with running_server(tiny_repository, *args, log=tmp_path / "server.log") as server:
        server.wait_serving(60)
        for _ in range(CONNECTIONS):
            with connection(server) as ch:
                call = raw_call(ch, "ModelInfer")
                for _ in range(2):
                    check_answer("ModelInfer", call(infer_bytes(4), timeout=30), 4)
        wait_until_idle(server)
        counts: list[dict] = []

        def every_image_counted() -> bool:  # the workers copy their counts once a second
            counts[:] = [scrape(server.metrics_port)]
            images = total(counts[0], "highway_images_total")
            return images >= CONNECTIONS * 8 and layers(counts[0]) and all(
                total(counts[0], "highway_gate_activity_count", layer=layer) == images
                for layer in layers(counts[0]))

        wait_until(every_image_counted, "every image in highway_gate_activity", timeout=30)
        after = counts[0]
        text = metrics_text(server.metrics_port)

    assert len(layers(after)) >= 2
    # One series per version, not one per worker: counts add up, drift is the worst worker's.
    for name in ("highway_gate_drift_score", "highway_gate_drift_threshold",
                 "highway_gate_drift_window_images", "highway_queue_requests"):
        assert [ls for (n, ls) in after if n == name] == [
            (("model", "highway_mnist"), ("version", "1"))], name
    # The emptiest worker's window: full once every worker served 10 images. Connections
    # spread as the kernel hashes them, so a worker may get few (seen: one 4-image call).
    window = after[("highway_gate_drift_window_images",
                    (("model", "highway_mnist"), ("version", "1")))]
    requests = [total(after, "highway_worker_requests_total", worker=w) for w in ("0", "1")]
    assert window == 10 if min(requests) >= 3 else 0 < window <= 10, (window, requests)
    assert after[("highway_queue_requests", (("model", "highway_mnist"), ("version", "1")))] == 0
    assert 0 <= after[("highway_gate_drift_score",
                       (("model", "highway_mnist"), ("version", "1")))] < 100
    assert "# TYPE highway_gate_activity histogram" in text


def layers(samples: dict) -> set[str]:
    return {dict(ls)["layer"] for (n, ls) in samples if n == "highway_gate_activity_count"}


def test_sigterm_drains_every_worker_and_exits_0(tiny_repository, tmp_path):
    log = tmp_path / "server.log"
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()

    def client(ch: grpc.Channel) -> None:
        call = raw_call(ch, "ModelInfer")
        while not stop.is_set():
            try:
                check_answer("ModelInfer", call(infer_bytes(512), timeout=60), 512)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
                time.sleep(0.01)
            outcomes.append((time.monotonic(), code))

    with running_server(tiny_repository, *WORKERS, log=log) as server:
        server.wait_serving(60)
        pids = worker_pids(scrape(server.metrics_port))
        channels = [connection(server) for _ in range(8)]
        threads = [threading.Thread(target=client, args=(ch,)) for ch in channels]
        for t in threads:
            t.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        exit_code = server.proc.wait(60)
        stop.set()
        for t in threads:
            t.join(60)
        for ch in channels:
            ch.close()

    assert exit_code == 0, log.read_text()
    codes = {code for _, code in outcomes}
    assert codes <= {"OK", "UNAVAILABLE"}, codes
    assert any(code == "OK" and t > signalled for t, code in outcomes), \
        "no request was answered after SIGTERM: nothing was drained"
    text = log.read_text()
    for index, pid in pids.items():
        assert f"worker {index} (pid {pid}) stopped" in text
        assert gone(pid)


def test_a_killed_worker_stops_the_server_with_its_status_logged(tiny_repository, tmp_path):
    log = tmp_path / "server.log"
    with running_server(tiny_repository, *WORKERS, log=log) as server:
        server.wait_serving(60)
        pids = worker_pids(scrape(server.metrics_port))
        os.kill(pids["1"], signal.SIGKILL)
        exit_code = server.proc.wait(60)
    assert exit_code == 3
    assert re.search(rf"ERROR server.workers: worker 1 \(pid {pids['1']}\) killed by SIGKILL "
                     r"while serving", log.read_text())
    assert gone(pids["0"]), "the surviving worker outlived the server"


def test_workers_stop_when_the_supervisor_is_killed(tiny_repository, tmp_path):
    with running_server(tiny_repository, *WORKERS, log=tmp_path / "server.log") as server:
        server.wait_serving(60)
        pids = worker_pids(scrape(server.metrics_port))
        server.proc.kill()
        server.proc.wait(30)
        wait_until(lambda: all(gone(pid) for pid in pids.values()),
                   "every worker gone (no orphans)", timeout=30, interval=0.1)
