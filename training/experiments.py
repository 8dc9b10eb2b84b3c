"""``python -m training.experiments {depth,gates,lesion,drift}``: regenerate the figures.

``depth``  plain vs highway fc nets at depths 10–100 (paper Figure 1) → depth.json,
           depth_runs.json, depth.png, and the best 50-layer highway net (highway_fc50.keras)
``gates``  that net's gate biases and gate outputs (paper Figure 2) → gates.json, gates.png
``lesion`` test error with one layer's gates shut, for every layer (paper Figure 4)
           → lesion.json, lesion.png

``drift``  gate drift of the exported model on shifted inputs (training/drift.py; no TensorFlow)
           → drift.json, drift.png

``--quick`` shrinks everything (two small depths, two epochs, the test fixture) into a smoke
test of the same code paths; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from highway_core import provenance

COMMANDS = ("depth", "gates", "lesion")
DEFAULT_OUT = "docs/results"


@dataclass(frozen=True)
class Settings:
    """What one invocation does; built once from the command line."""

    command: str  # depth, gates or lesion
    out: Path = Path(DEFAULT_OUT)  # folder for JSON, PNG and the kept model
    data_dir: str | None = None  # MNIST IDX folder; None: $HIGHWAY_DATA_DIR
    quick: bool = False  # smoke-test sizes
    model: Path | None = None  # gates/lesion: the network to analyse; None: the depth run's
    example: int = 0  # gates: index of the test image shown
    resume: bool = False  # depth: reuse runs in OUT/depth_runs.json made with the same budget
    train_images: int = 10000  # gates/lesion: training images analysed (as the paper)


# Smoke-test sizes: the same code paths in seconds; on the 3,000-image fixture.
QUICK_DEPTH = dict(depths=(3, 6), lrs=(0.05,), seeds=(0,), epochs=2, batch_size=64,
                   val_size=500, train_size=None, keep_depth=6)


def parse_args(argv: list[str] | None = None):
    from training.config import DepthConfig

    p = argparse.ArgumentParser(prog="python -m training.experiments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--quick", action="store_true", help="smoke-test sizes (seconds, not minutes)")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default $HIGHWAY_DATA_DIR)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--seeds", type=int, nargs="+", help="depth: seeds per learning rate")
    p.add_argument("--lrs", type=float, nargs="+", help="depth: initial learning rates")
    p.add_argument("--depths", type=int, nargs="+", help="depth: numbers of layers")
    p.add_argument("--kinds", nargs="+", help="depth: plain and/or highway (default both)")
    p.add_argument("--epochs", type=int, help="depth: epochs per run")
    p.add_argument("--batch-size", type=int, help="depth: images per step")
    p.add_argument("--train-size", type=int,
                   help="depth: fit on the first N training images (default 10000; 0: all)")
    p.add_argument("--keep-depth", type=int,
                   help="depth: highway depth whose best net is kept for gates/lesion (0: none)")
    p.add_argument("--gate-bias", type=float, nargs="+",
                   help="depth: highway gate-bias inits searched, like --lrs (default: the rule "
                        "of training.layers.gate_bias_for_depth)")
    p.add_argument("--resume", action="store_true",
                   help="depth: reuse the runs in OUT/depth_runs.json made with the same budget")
    p.add_argument("--model", default=None, help="gates/lesion: .keras file to analyse")
    p.add_argument("--example", type=int, default=0, help="gates: test image to show")
    args = p.parse_args(argv)
    depth = DepthConfig(**QUICK_DEPTH) if args.quick else DepthConfig()
    overrides = {"seeds": args.seeds, "lrs": args.lrs, "depths": args.depths, "kinds": args.kinds,
                 "epochs": args.epochs, "batch_size": args.batch_size,
                 "train_size": args.train_size, "keep_depth": args.keep_depth,
                 "gate_biases": args.gate_bias}
    depth = replace(depth, **{k: tuple(v) if isinstance(v, list) else v
                              for k, v in overrides.items() if v is not None})
    if depth.train_size == 0:
        depth = replace(depth, train_size=None)
    settings = Settings(command=args.command, out=Path(args.out), data_dir=args.data_dir,
                        quick=args.quick, model=Path(args.model) if args.model else None,
                        example=args.example, resume=args.resume,
                        train_images=1000 if args.quick else 10000)
    return settings, depth


def kept_model_name(keep_depth: int) -> str:
    return f"highway_fc{keep_depth}.keras"


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1) + "\n")
    print(f"wrote {path}", flush=True)


def _previous_runs(settings: Settings, depth_cfg) -> list[dict]:
    from training import depth

    path = settings.out / "depth_runs.json"
    if not settings.resume or not path.is_file():
        return []
    previous = json.loads(path.read_text())
    if not depth.same_budget(depth_cfg, previous["config"]):
        print(f"not reusing {path}: its runs had another budget", flush=True)
        return []
    return previous["runs"]


def run_depth(settings: Settings, depth_cfg) -> None:
    from training import depth, depth_tables, plots
    from training.data import load_mnist
    from training.train import versions

    data = load_mnist(settings.data_dir)
    name = kept_model_name(depth_cfg.keep_depth)
    runs_file = settings.out / "depth_runs.json"

    def save_progress(runs: list[dict]) -> None:
        # Written after every run, so that an interrupted grid can go on with --resume.
        runs_file.write_text(json.dumps({"config": asdict(depth_cfg), "complete": False,
                                         "kept_model": name, "runs": runs}, indent=1) + "\n")

    report = depth.run_grid(depth_cfg, data, settings.out, name,
                            previous=_previous_runs(settings, depth_cfg), on_run=save_progress)
    print(depth_tables.depth_summary(report["rows"]), depth_tables.grid_table(report["runs"]),
          depth_tables.bias_table(report["runs"]), depth_tables.ratio_table(report["runs"]),
          sep="\n\n", flush=True)
    _write_json(settings.out / "depth.json", report["rows"])
    _write_json(runs_file,
                {**provenance.stamp(), "config": report["config"], "complete": True,
                 "runs_per_config": report["runs_per_config"],
                 "wall_seconds": report["wall_seconds"],
                 "train_seconds_total": report["train_seconds_total"],
                 "data": report["data"], "fitting_images": report["images"],
                 "kept_model": name if (settings.out / name).is_file() else None,
                 "versions": versions(), "runs": report["runs"]})
    cfg = report["config"]
    low, high = report["runs_per_config"]
    title = (f"best of {low if low == high else f'{low}–{high}'} runs per configuration; "
             f"SGD momentum {cfg['momentum']}, {cfg['epochs']} epochs of "
             f"{report['images']:,} images, batch {cfg['batch_size']}")
    plots.depth_curves(depth.curves_by_config(report), report["rows"],
                         settings.out / "depth.png", title)
    print(f"wrote {settings.out / 'depth.png'}", flush=True)


def run_gates_or_lesion(settings: Settings, depth_cfg) -> None:
    from training import gate_analysis, plots
    from training.data import load_mnist

    path = settings.model or settings.out / kept_model_name(depth_cfg.keep_depth)
    model = gate_analysis.load(path)
    data = load_mnist(settings.data_dir)
    start = time.perf_counter()
    # Training images: the first N of the fitting split (the paper averages over training
    # examples); the test set is reported beside them.
    (x_fit, y_fit), _ = data.split_validation(depth_cfg.val_size)
    n = settings.train_images
    if settings.command == "gates":
        report = gate_analysis.gates(model, data, x_fit[:n], settings.example)
    else:
        report = gate_analysis.lesion(model, data.x_test, data.y_test, x_fit[:n], y_fit[:n])
    # The file's name and digest: a report must say which network it analysed, even
    # after the file was copied and renamed (runs/…/highway_fc50.keras → docs/results/…).
    report["model"] = path.name
    report["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    report.update(provenance.stamp(), seconds=round(time.perf_counter() - start, 1))
    _write_json(settings.out / f"{settings.command}.json", report)
    draw = plots.gates if settings.command == "gates" else plots.lesion
    draw(report, settings.out / f"{settings.command}.png")
    print(f"wrote {settings.out / f'{settings.command}.png'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["drift"]:  # its own flags, and no TensorFlow
        from training import drift

        return drift.main(argv[1:])
    settings, depth_cfg = parse_args(argv)  # bad arguments are answered before TensorFlow loads
    from training.data import MnistDataError

    start = time.perf_counter()
    try:
        if settings.command == "depth":
            depth_cfg.validate()
        from training.quiet import import_tensorflow

        import_tensorflow()  # before Keras: keeps TF's C++ start-up notes off the console
        settings.out.mkdir(parents=True, exist_ok=True)
        if settings.command == "depth":
            print(f"depth experiment: {asdict(depth_cfg)}", flush=True)
            run_depth(settings, depth_cfg)
        else:
            run_gates_or_lesion(settings, depth_cfg)
    except (MnistDataError, ValueError, OSError) as e:
        print(f"experiments: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("experiments: interrupted", file=sys.stderr)
        return 130
    print(f"{settings.command}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
