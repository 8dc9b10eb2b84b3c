"""Ratios, targets, a Markdown table and a PNG for a benchmark result.

Ratios compare each run with the raw ONNX Runtime median: ``vs_best_raw``
against the fastest raw batch size (the machine's ceiling), ``vs_raw_same``
against raw ORT at the request's own batch size when it was measured.
Targets (issues 7 and 12) are evaluated here and reported, never asserted.
For the stream APIs, "c" is the number of requests in flight (several per stream).

The gRPC floor (Python gRPC answering canned responses, no model) gives a
ceiling for any Python gRPC server on the same load: the cores spend
1/floor seconds per image on gRPC and the load generator and at least
1/best-raw seconds on the model, so images/s ≤ 1 / (1/floor + 1/best raw).
It is optimistic (it assumes the model always runs at its best batch size).
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.harness import UNARY

TARGET_SINGLE_C16 = 0.8
TARGET_B64_C4 = 0.95
TARGET_C1_EXTRA_MS = 0.3
TARGET_STREAM_VS_UNARY = 1.5  # issue 12: a stream beats its own unary twin at c=16


def _find(rows: list[dict], server: str, api: str, images: int, c: int) -> dict | None:
    for row in rows:
        if (row["server"], row["api"], row["images"], row["concurrency"]) == (server, api,
                                                                              images, c):
            return row
    return None


def add_ratios(result: dict) -> None:
    """Adds ratios to every run and a ``targets`` list to ``result`` (in place)."""
    raw = {int(b): r for b, r in result["raw"].items()}
    best = max((r["median_images_per_s"] for r in raw.values()), default=0.0)
    result["best_raw_images_per_s"] = best
    rows = result["runs"]
    for row in rows:
        row["vs_best_raw"] = row["images_per_s"] / best if best else None
        same = raw.get(row["images"])
        row["vs_raw_same"] = (row["images_per_s"] / same["median_images_per_s"]
                              if same and same["median_images_per_s"] else None)
    for row in rows:
        floor = _find(rows, "floor", row["api"], row["images"], row["concurrency"])
        row["python_grpc_ceiling_images_per_s"] = (
            1 / (1 / floor["images_per_s"] + 1 / best)
            if floor and floor["images_per_s"] and best else None)
    targets = []
    apis = sorted({row["api"] for row in rows})
    for api in apis:
        row = _find(rows, "real", api, 1, 16)
        if row is not None and best:
            targets.append({"target": f"{api} 1 image c=16 >= {TARGET_SINGLE_C16} x best raw",
                            "value": row["vs_best_raw"],
                            "met": row["vs_best_raw"] >= TARGET_SINGLE_C16})
        row = _find(rows, "real", api, 64, 4)
        if row is not None and 64 in raw:
            targets.append({"target": f"{api} 64 images c=4 >= {TARGET_B64_C4} x raw b64",
                            "value": row["vs_raw_same"],
                            "met": row["vs_raw_same"] >= TARGET_B64_C4})
        row = _find(rows, "real", api, 1, 1)
        if row is not None and 1 in raw and row["p50_ms"] is not None:
            extra = row["p50_ms"] - raw[1]["p50_ms"]
            targets.append({"target": f"{api} c=1 p50 <= raw b1 p50 + {TARGET_C1_EXTRA_MS} ms",
                            "value": extra, "met": extra <= TARGET_C1_EXTRA_MS})
        floor = _find(rows, "floor", api, 1, 1)
        if floor is not None and floor["p50_ms"] is not None:
            targets.append({"target": f"{api} c=1 gRPC floor p50 (no model) <= "
                                      f"{TARGET_C1_EXTRA_MS} ms", "value": floor["p50_ms"],
                            "met": floor["p50_ms"] <= TARGET_C1_EXTRA_MS})
        for images, c in ((1, 16), (64, 4)):
            ours, naive = _find(rows, "real", api, images, c), _find(rows, "naive", api, images,
                                                                       c)
            if ours and naive and naive["images_per_s"]:
                targets.append({"target": f"{api} {images} image(s) c={c}: real / naive",
                                "value": ours["images_per_s"] / naive["images_per_s"],
                                "met": None})
            ceiling = ours and ours["python_grpc_ceiling_images_per_s"]
            if ceiling:
                goal = TARGET_SINGLE_C16 if images == 1 else TARGET_B64_C4
                targets.append({"target": f"{api} {images} image(s) c={c}: Python gRPC ceiling "
                                          f"x best raw >= {goal}", "value": ceiling / best,
                                "met": ceiling / best >= goal})
                targets.append({"target": f"{api} {images} image(s) c={c}: real / ceiling",
                                "value": ours["images_per_s"] / ceiling, "met": None})
    for row in rows:  # --workers N against one process, same load, same run
        one = _find(rows, "real", row["api"], row["images"], row["concurrency"])
        if (row["server"].startswith("real-w") and (row["images"], row["concurrency"])
                in ((1, 16), (64, 4)) and one and one["images_per_s"]):
            targets.append({"target": f"{row['api']} {row['images']} image(s) "
                                      f"c={row['concurrency']}: {row['server']} / real",
                            "value": row["images_per_s"] / one["images_per_s"], "met": None})
    for stream_api, unary_api in UNARY.items():
        stream, unary = (_find(rows, "real", stream_api, 1, 16),
                         _find(rows, "real", unary_api, 1, 16))
        if stream and unary and unary["images_per_s"]:
            ratio = stream["images_per_s"] / unary["images_per_s"]
            targets.append({"target": f"{stream_api} 1 image c=16 >= {TARGET_STREAM_VS_UNARY} x "
                                      f"{unary_api} c=16", "value": ratio,
                            "met": ratio >= TARGET_STREAM_VS_UNARY})
    result["targets"] = targets


def _f(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(result: dict) -> str:
    """The run as Markdown: raw ORT, then every run with ratios first, then the targets."""
    m = result["machine"]
    lines = [f"# {result['date']} · {m['cpu']} · {m['cores']} cores · ORT {m['onnxruntime']} "
             f"({result['provider']}) · load avg before {result['load_average_before'][0]:.1f}",
             "", "| raw ORT batch | images/s (median) | min–max | p50 ms | CPU µs/img |",
             "|---|---|---|---|---|"]
    for b, r in result["raw"].items():
        lines.append(f"| {b} | {r['median_images_per_s']:,.0f} | {r['min_images_per_s']:,.0f}"
                     f"–{r['max_images_per_s']:,.0f} | {r['p50_ms']:.3f} | "
                     f"{_f(r.get('cpu_us_per_image'), '.0f')} |")
    lines += ["", "| server | API | images/req | c | × best raw | × raw same batch | images/s "
              "| p50 ms | p90 ms | p99 ms | errors | server CPU µs/img | client CPU µs/img "
              "| Python gRPC ceiling img/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(
            f"| {r['server']} | {r['api']} | {r['images']} | {r['concurrency']} | "
            f"{_f(r['vs_best_raw'], '.2f')} | {_f(r['vs_raw_same'], '.2f')} | "
            f"{r['images_per_s']:,.0f} | {_f(r['p50_ms'], '.2f')} | {_f(r['p90_ms'], '.2f')} | "
            f"{_f(r['p99_ms'], '.2f')} | {r['errors']} | "
            f"{_f(r['server_cpu_us_per_image'], '.0f')} | "
            f"{_f(r['client_cpu_us_per_image'], '.0f')} | "
            f"{_f(r.get('python_grpc_ceiling_images_per_s'), ',.0f')} |")
    lines += ["", "| target | value | met |", "|---|---|---|"]
    for t in result["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value']:.2f} | {met} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Throughput bars (real vs naive) against raw ORT lines, and p50/p99 latency."""
    import matplotlib

    matplotlib.use("Agg")
    # Font fallbacks are matplotlib's business: its font manager would fill the log.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    runs = result["runs"]
    keys = sorted({(r["api"], r["images"], r["concurrency"]) for r in runs},
                  key=lambda k: (k[1], k[2], k[0]))
    labels = [f"{api}\n{n} img c={c}" for api, n, c in keys]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 1.1 * len(keys)), 8))
    present = {r["server"] for r in runs}
    bars = [s for s in ("real", *sorted(present - {"real", "naive", "floor"}), "naive")
            if s in present]  # real-wN: the real server with --workers N
    width = 0.8 / max(len(bars), 1)
    for i, server in enumerate(bars):
        values = [(_find(runs, server, *k) or {}).get("images_per_s", 0) for k in keys]
        top.bar([x + (i - (len(bars) - 1) / 2) * width for x in range(len(keys))], values,
                width, label=f"{server} server")
    for b, r in result["raw"].items():
        top.axhline(r["median_images_per_s"], linestyle="--", linewidth=1,
                    color={"1": "grey", "8": "tab:purple", "64": "black"}.get(b, "tab:red"),
                    label=f"raw ORT batch {b}")
    if result.get("best_raw_images_per_s"):
        top.axhline(TARGET_SINGLE_C16 * result["best_raw_images_per_s"], linestyle=":",
                    color="tab:green",
                    label=f"target {TARGET_SINGLE_C16} × best raw (1 image c=16)")
    ceilings = [(_find(runs, "real", *k) or {}).get("python_grpc_ceiling_images_per_s")
                for k in keys]
    if any(ceilings):
        top.scatter([x for x, v in enumerate(ceilings) if v], [v for v in ceilings if v],
                    marker="_", s=900, color="tab:red", zorder=3,
                    label="Python gRPC ceiling (floor + model)")
    top.set_ylabel("images / s")
    top.set_title(f"highway_mnist · {result['machine']['cores']} cores · {result['date'][:16]}")
    # Head room above the tallest bar or line, so the legend covers none of them.
    top.set_ylim(0, 1.6 * top.get_ylim()[1])
    top.legend(fontsize=7, loc="upper left", ncols=2, framealpha=0.9)
    dots = [*bars, *(["floor"] if "floor" in present else [])]
    for i, server in enumerate(dots):
        for q, marker in (("p50_ms", "o"), ("p99_ms", "^")):
            values = [(_find(runs, server, *k) or {}).get(q) for k in keys]
            offset = (i - (len(dots) - 1) / 2) * 0.8 / max(len(dots), 1)
            bottom.scatter([x + offset for x, v in enumerate(values) if v],
                           [v for v in values if v], marker=marker,
                           label=f"{server} {q[:3]}")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency ms")
    for ax in (top, bottom):
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(labels, fontsize=7)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
