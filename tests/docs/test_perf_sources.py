"""The performance figures README.md quotes for issues 12 and 14 are the ones their JSON holds.

docs/perf/targets.json (``python -m bench`` on the fp32 version, workers 1 and 2, unary
and streaming), docs/perf/int8_v3.json (``python -m export.quantize_study`` on the shipped
model), int8.json and int8_vnni.json (the same on version 1's model, on CPUs without and with
VNNI), the shipped int8 version's verification.json and
docs/perf/gates_ab.json (``python -m bench.gates``). Each README table is rebuilt here
from its file, cell by cell.
"""

from __future__ import annotations

import pytest

from tests.docs.markdown import PERF, folded, load, table, text
from tests.shipped import FP32_DIR, INT8_DIR

LOADS = [("ModelInfer", 1, 1), ("ModelStreamInfer", 1, 1), ("ModelInfer", 1, 16),
         ("ModelStreamInfer", 1, 16), ("ModelInfer", 64, 4)]
SERVERS = {"real": "--workers 1", "real-w2": "--workers 2"}


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def targets_rows(report: dict) -> list[list[str]]:
    """The README's targets table, as its cells."""
    runs = {(r["server"], r["api"], r["images"], r["concurrency"]): r for r in report["runs"]}
    best = report["best_raw_images_per_s"]
    rows = []
    for api, images, c in LOADS:
        for server, label in SERVERS.items():
            r = runs[(server, api, images, c)]
            rows.append([f"{images} image{'s' if images > 1 else ''}, c={c}", api, label,
                         f"{r['vs_best_raw']:.2f}", f"{r['vs_raw_same']:.2f}",
                         f"{r['images_per_s']:,.0f}", _ms(r["p50_ms"]), _ms(r["p99_ms"]),
                         f"{r['python_grpc_ceiling_images_per_s'] / best:.2f}"])
    return rows


def test_targets_table_is_targets_json():
    report = load(PERF / "targets.json")
    assert table(text("README.md"), "| load | API | server | × best raw |") == (
        targets_rows(report))


def test_targets_verdicts_are_targets_json():
    report = load(PERF / "targets.json")
    rows = table(text("README.md"), "| target (issue 12) |")
    verdicts = {t["target"]: t for t in report["targets"]}
    assert rows, "no targets table"
    for target, value, met in (row[:3] for row in rows):
        source = verdicts[target.strip("`")]
        assert value == f"{source['value']:.2f}", target
        assert met == {True: "yes", False: "no", None: "–"}[source["met"]], target


def _recipe_of(version_dir) -> str:
    return load(version_dir / "verification.json")["quantization"]["name"]


@pytest.mark.parametrize("name, header, marked, version", [
    ("int8_v3.json", "| recipe, version 3's model | validation acc. |", " (shipped)", INT8_DIR),
    # version 1's model, on CPUs without and with VNNI
    ("int8.json", "| recipe | validation acc. |", " (version 2)", INT8_DIR.parent / "2"),
    ("int8_vnni.json", "| recipe, on a CPU with VNNI | validation acc. |", " (version 2)",
     INT8_DIR.parent / "2"),
])
def test_int8_table_is_int8_json(name, header, marked, version):
    report = load(PERF / name)
    rows = table(text("README.md"), header)
    by_name = {r["recipe"]: r for r in report["results"]}
    assert len(rows) == len(by_name)
    # the marked row is the recipe that version was quantized with, and only that one
    assert [row[0] for row in rows if row[0].endswith(marked)] == [_recipe_of(version) + marked]
    for row in rows:
        r = by_name[row[0].replace(marked, "")]
        ips, up = r["images_per_s"], r["speedup_vs_fp32"]
        assert row[1:3] == [f"{100 * r['validation_accuracy']:.2f} %",
                            f"{100 * r['test_accuracy']:.2f} %"], row[0]
        assert row[5:8] == [f"{ips[b]:,.0f}" for b in ("1", "8", "64")], row[0]
        assert row[8] == " / ".join(f"{up[b]:.2f}" for b in ("1", "8", "64")), row[0]


def test_gate_cost_is_gates_ab_json():
    ab = load(PERF / "gates_ab.json")
    cpu = ab["server_cpu_us_per_image_median"]
    quoted = (f"median on/off throughput ratio {ab['ratio_median']:.3f} over "
              f"{len(ab['ratio_on_over_off'])} pairs (from {ab['ratio_min']:.3f} to "
              f"{ab['ratio_max']:.3f}); server CPU per image {cpu['on']:,.0f} µs on, "
              f"{cpu['off']:,.0f} µs off")
    assert quoted in folded("README.md")


def test_targets_prose_is_targets_json():
    report = load(PERF / "targets.json")
    runs = {(r["server"], r["api"], r["images"], r["concurrency"]): r for r in report["runs"]}
    raw = {b: report["raw"][b]["median_images_per_s"] for b in ("1", "8", "64")}
    floor_u, floor_s, w1_u, w1_s, w2_u, w2_s = (
        runs[(server, api, 1, 16)] for server in ("floor", "real", "real-w2")
        for api in ("ModelInfer", "ModelStreamInfer"))
    c1 = [runs[(s, "ModelInfer", 1, 1)]["images_per_s"] for s in ("real", "real-w2")]
    quotes = [
        f"load average {report['load_average_before'][0]:.1f} at the start",
        f"{raw['1']:,.0f} img/s at batch 1, {raw['8']:,.0f} at batch 8, {raw['64']:,.0f} at "
        "batch 64 in this run",
        f"{floor_u['images_per_s']:,.0f} img/s unary and {floor_s['images_per_s']:,.0f} streamed "
        f"at c=16; {runs[('floor', 'ModelInfer', 1, 1)]['p50_ms']:.2f} ms and "
        f"{runs[('floor', 'ModelStreamInfer', 1, 1)]['p50_ms']:.2f} ms p50 at c=1",
        f"{floor_u['server_cpu_us_per_image']:.0f} → {floor_s['server_cpu_us_per_image']:.0f} µs "
        f"of server CPU and {floor_u['client_cpu_us_per_image']:.0f} → "
        f"{floor_s['client_cpu_us_per_image']:.0f} µs of client CPU",
        f"({w1_s['python_grpc_ceiling_images_per_s']:.0f} against "
        f"{w1_u['python_grpc_ceiling_images_per_s']:.0f} img/s)",
        f"({w1_s['images_per_s'] / w1_u['images_per_s']:.2f} with one worker, "
        f"{w2_s['images_per_s'] / w2_u['images_per_s']:.2f} with two",
        f"At c=1 it loses ({c1[1] / c1[0]:.2f} ×)",
    ]
    for quote in quotes:
        assert quote in folded("README.md"), quote


def test_int8_prose_is_the_int8_jsons():
    """The figures the int8 section quotes from version 1's studies (version 2's recipe)."""
    shipped = {n: {r["recipe"]: r for r in load(PERF / n)["results"]}["u8s8-qoperator-minmax"]
               for n in ("int8.json", "int8_vnni.json")}
    fp32 = {r["recipe"]: r for r in load(PERF / "int8_vnni.json")["results"]}["fp32"]
    vnni, plain = shipped["int8_vnni.json"], shipped["int8.json"]
    up = [vnni["speedup_vs_fp32"][b] for b in ("1", "8", "64")]
    quotes = [
        f"version 2's recipe at {up[0]:.2f} / {up[1]:.2f} / {up[2]:.2f} ×",
        f"version 2's file: {100 * vnni['test_accuracy']:.2f} % against fp32's "
        f"{100 * fp32['test_accuracy']:.2f} %, top-1 agreement "
        f"{100 * vnni['test_top1_agreement']:.2f} %, max |Δgate| "
        f"{vnni['test_max_abs_diff_gate_activity']:.3f} instead of "
        f"{plain['test_max_abs_diff_gate_activity']:.3f}",
        f"scores {100 * plain['test_accuracy']:.2f} % on the test set on a Zen 1 EPYC without "
        f"VNNI and {100 * vnni['test_accuracy']:.2f} % on a Zen 5 with it",
    ]
    for quote in quotes:
        assert quote in folded("README.md"), quote


def test_shipped_int8_prose_is_its_study_and_its_verification():
    """What the int8 section, the Versions paragraph and the top of the README say of the
    shipped int8 version: its study on version 3's model and its own verification."""
    study = load(PERF / "int8_v3.json")
    rows = {r["recipe"]: r for r in study["results"]}
    shipped, fp32 = rows[study["chosen_on_validation"]], rows["fp32"]
    int8, keras = load(INT8_DIR / "verification.json"), load(FP32_DIR / "verification.json")
    up = [shipped["speedup_vs_fp32"][b] for b in ("1", "8", "64")]
    uint8 = [v for r in study["results"][1:] if r["settings"]["activations"] == "uint8"
             for v in r["speedup_vs_fp32"].values()]
    worst = max(fp32["validation_accuracy"] - r["validation_accuracy"]
                for r in study["results"][1:] if r["settings"]["activations"] == "uint8")
    assert int8["quantization"]["name"] == study["chosen_on_validation"]
    quotes = [
        f"`{study['chosen_on_validation']}` ({up[0]:.2f} / {up[1]:.2f} / {up[2]:.2f} ×; "
        f"`u8s7-qoperator-minmax` at "
        + " / ".join(f"{v:.2f}" for v in rows["u8s7-qoperator-minmax"]["speedup_vs_fp32"].values())
        + " ×",
        f"every uint8-activation recipe runs at {min(uint8):.2f}–{max(uint8):.2f} × fp32 and "
        f"none loses more than {100 * worst:.2f} point on validation",
        f"load average {study['machine']['load_average_before'][0]:.2f} at the start",
        f"version 4 is as accurate as fp32 on the test set and {min(up):.2f}–{max(up):.2f} × "
        "as fast",
        f"**{100 * int8['accuracy_onnx']:.2f} %** on all 10,000 test images against Keras' "
        f"{100 * keras['accuracy_keras']:.2f} %",
        f"top-1 agreement with Keras {100 * int8['top1_agreement']:.2f} % "
        f"({int8['top1_mismatches']} images), max |Δgate| "
        f"{int8['max_abs_diff_gate_activity']:.3f} (bound 0.05)",
        f"(max |Δp| {int8['max_abs_diff_probabilities']:.2f}:",
        f"int8 twin ({100 * int8['accuracy_onnx']:.2f} % on the same test set;",
    ]
    assert shipped["test_accuracy"] == fp32["test_accuracy"]  # "as accurate as fp32"
    for quote in quotes:
        assert quote in folded("README.md"), quote

