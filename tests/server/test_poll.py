"""Poll mode under constant load: new versions served without a failed request, bad ones
reported and ignored, removed ones unloaded, changed configs applied."""

from __future__ import annotations

import threading
from collections import Counter

import grpc
import pytest

from tests.polling import wait_until
from tests.server.repos import (
    MODEL,
    add_corrupt_version,
    add_version,
    copy_repository,
    edit_config,
    index,
    infer_request,
    served_versions,
)

POLL_S = 0.5


class Load:
    """8 clients sending ModelInfer for the latest version, nonstop, until stopped.

    ``first_poll[v]``: the poller's completed cycles when a client first got version v.
    """

    def __init__(self, running, images, clients: int = 8):
        self.running, self.images = running, images
        self.versions: Counter[str] = Counter()
        self.first_poll: dict[str, int] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                         for i in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _client(self, i: int) -> None:
        request = infer_request(self.images[i * 4:i * 4 + 4])
        while not self._stop.is_set():
            try:
                version = self.running.kserve.ModelInfer(request, timeout=60).model_version
            except grpc.RpcError as e:
                with self._lock:
                    self.errors.append(f"{e.code().name}: {e.details()}")
                continue
            with self._lock:
                self.versions[version] += 1
                if version not in self.first_poll and self.running.app.poller is not None:
                    self.first_poll[version] = self.running.app.poller.cycles

    def seen(self, version: str) -> int:
        with self._lock:
            return self.versions[version]


def wait_for(condition, what: str) -> None:
    """Waits (bounded, for a stuck server) until ``condition()``; the assertions come after."""
    wait_until(condition, what, timeout=120, interval=0.02)


def test_new_version_is_served_within_two_polls_and_a_corrupt_one_changes_nothing(
        start_server, tiny_repository, tmp_path, fixture_mnist):
    repo = copy_repository(tiny_repository, tmp_path / "repo")
    model_dir = repo / MODEL
    running = start_server(model_repository=repo, model_control_mode="poll",
                           repository_poll_secs=POLL_S)
    poller = running.app.poller
    with Load(running, fixture_mnist.x_test) as load:
        wait_for(lambda: load.seen("1") > 50, "traffic on version 1")
        add_version(model_dir, 2, tiny_repository / MODEL / "1")
        renamed_at = poller.cycles
        wait_for(lambda: load.seen("2") > 0, "version 2 to be served")
        assert load.first_poll["2"] - renamed_at <= 2  # polls completed since the rename
        wait_for(lambda: load.seen("2") > 50, "traffic on version 2")

        add_corrupt_version(model_dir, 3)
        wait_for(lambda: ("3", "UNAVAILABLE") in {r[1:3] for r in index(running)},
                 "version 3 to fail")
        failed_at = poller.cycles
        before = load.seen("2")
        wait_for(lambda: poller.cycles >= failed_at + 2 and load.seen("2") > before + 50,
                 "two more polls under load")
    assert load.errors == []
    assert load.seen("3") == 0 and served_versions(running) == ["2"]
    rows = {r[1]: r for r in index(running)}
    assert rows["2"][2] == "READY"
    assert rows["1"][2:] == ("UNAVAILABLE", "unloaded")
    assert rows["3"][2] == "UNAVAILABLE" and "3/model.onnx: cannot load model" in rows["3"][3]
    assert index(running, ready=True) == [(MODEL, "2", "READY", "")]
    # One failure, recorded once (not once per poll); the info gauge follows the swap.
    loads = "highway_model_loads_total"
    assert running.metric(loads, {"model": MODEL, "version": "3", "outcome": "failure"}) == 1
    assert running.metric(loads, {"model": MODEL, "version": "2", "outcome": "success"}) == 1
    assert running.metric("highway_model_load_duration_seconds_count",
                          {"model": MODEL, "version": "2"}) == 1
    info = {s.labels["version"] for m in running.registry.collect() for s in m.samples
            if s.name == "highway_model_info"}
    assert info == {"2"}


def test_removed_versions_and_models_unload_and_a_changed_config_applies(
        start_server, tiny_repository, tmp_path, fixture_mnist):
    repo = copy_repository(tiny_repository, tmp_path / "repo", versions=(1, 2),
                           config="version_policy { all {} }")
    copy_repository(tiny_repository, repo, name="second")
    running = start_server(model_repository=repo, model_control_mode="poll",
                           repository_poll_secs=POLL_S)
    assert served_versions(running) == ["1", "2"] and served_versions(running, "second")
    with Load(running, fixture_mnist.x_test, clients=4) as load:
        edit_config(repo / MODEL, "version_policy { specific { versions: [1] } }")
        wait_for(lambda: served_versions(running) == ["1"], "the new policy")
        (repo / "second").rename(repo / ".gone")
        wait_for(lambda: "second" not in {r[0] for r in index(running)}, "model removed")
    assert load.errors == []
    with pytest.raises(grpc.RpcError) as e:
        running.kserve.ModelInfer(infer_request(fixture_mnist.x_test[:1], model="second"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_version_folder_without_its_model_yet_is_retried_not_failed(
        start_server, tiny_repository, tmp_path, fixture_mnist):
    repo = copy_repository(tiny_repository, tmp_path / "repo")
    model_dir = repo / MODEL
    running = start_server(model_repository=repo, model_control_mode="poll",
                           repository_poll_secs=POLL_S)
    (model_dir / "2").mkdir()  # copied without the rename convention: the file comes later
    start = running.app.poller.cycles
    wait_for(lambda: running.app.poller.cycles >= start + 2, "two polls")
    assert served_versions(running) == ["1"]
    assert ("2", "UNAVAILABLE") not in {r[1:3] for r in index(running)}
    source = tiny_repository / MODEL / "1" / "model.onnx"
    (model_dir / "2" / ".model.onnx.part").write_bytes(source.read_bytes())
    (model_dir / "2" / ".model.onnx.part").rename(model_dir / "2" / "model.onnx")
    wait_for(lambda: served_versions(running) == ["2"], "version 2 once its file is there")
    assert running.metric("highway_model_loads_total", {"model": MODEL, "version": "2",
                                                        "outcome": "failure"}) == 0
    response = running.kserve.ModelInfer(infer_request(fixture_mnist.x_test[:1]))
    assert response.model_version == "2"
