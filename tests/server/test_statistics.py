"""ModelStatistics counters across workers: the files one worker writes, another reads.

The whole path (two real workers, ModelStatistics over real connections) is in
tests/reliability/test_workers.py; these are the file rules it relies on.
"""

from __future__ import annotations

from server.statistics import PeerFiles, RunStats, snapshot, total


def _stats(images: int, last_ms: int) -> RunStats:
    stats = RunStats()
    stats.add(stats.success, 0.002, count=2)
    stats.add(stats.infer, 0.001)
    stats.executions, stats.images, stats.last_ms = 1, images, last_ms
    return stats


def test_totals_add_counts_and_durations_and_keep_the_latest_inference():
    a, b = snapshot(_stats(3, 100)), snapshot(_stats(5, 90))
    both = total([a, b])
    assert both["images"] == 8 and both["executions"] == 2 and both["last_ms"] == 100
    assert both["success"] == [4, 8_000_000] and both["infer"] == [2, 2_000_000]
    assert both["fail"] == [0, 0] and total([]) == total([snapshot(RunStats())])


def test_a_worker_reads_the_others_files_not_its_own(tmp_path):
    folder = tmp_path / "statistics"
    zero, one, two = (PeerFiles(folder, i) for i in range(3))
    zero.write({("m", 1): _stats(3, 100), ("m", 2): _stats(7, 100)})
    one.write({("m", 1): _stats(5, 90)})
    assert sorted(s["images"] for s in two.others("m", 1)) == [3, 5]
    assert [s["images"] for s in zero.others("m", 1)] == [5]  # its own file is live, not read
    assert zero.others("other", 1) == [] and sorted(p.name for p in folder.iterdir()) == [
        "worker0.json", "worker1.json"]  # replaced whole: no partial file left behind


def test_an_unreadable_file_is_skipped_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "statistics"
    PeerFiles(folder, 0).write({("m", 1): _stats(3, 100)})
    (folder / "worker1.json").write_text("{not json")
    assert [s["images"] for s in PeerFiles(folder, 2).others("m", 1)] == [3]
    assert "worker1.json" in caplog.text
