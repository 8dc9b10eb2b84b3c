"""``python -m training.table1``: a training recipe over fixed seeds, for the paper's Table 1.

Every recipe tried is kept (``RECIPES``), each with its own table: if a recipe misses the
goal, the next one changes it on the validation split's evidence and runs all seeds again.

Each seed trains in its own ``highway-train`` process into ``RUNS/seed<N>``; an
interrupted one resumes from its backup when the command is run again. A finished
seed's record (``metrics.json``, ``history.csv``, ``train.log``) is copied into
``RECORDS/seed<N>``, which is committed: a seed with a record is done, so on a fresh
clone the command trains nothing and rebuilds the table's JSON and PNG from the records.
After every finished seed the table is rewritten, so it always holds what has been
measured and says which seeds are still missing. Selection is on the validation split
only; the test set is read once per run, after selection, by the trainer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from training import history, table1_report

SEEDS = (1, 2, 3)  # fixed before any run (issue: "The paper's claims on solid ground")
V1 = ("--model", "conv32", "--epochs", "40", "--augment", "2", "--schedule", "cosine",
      "--lr", "1e-3", "--weight-decay", "0.01")
"""The first shipped model's recipe (models/highway_mnist/1/metrics.json), the seed aside."""
RECIPES = {
    "v1": V1,
    # v1's runs end with training losses of 0.0011-0.0017 against validation losses of
    # 0.026-0.029 (results/table1/seed*/history.csv): it overfits, so v2 adds dropout only.
    "v2": (*V1, "--dropout", "0.2"),
}
"""Every recipe tried for Table 1, kept with its table; a new one gets a new name."""
CHANGES = {"v1": "the first shipped model's recipe (versions 1 and 2)",
           "v2": "v1 with dropout 0.2 after each of the three pooling stages"}
"""What each recipe changed, in the words RESULTS.md's comparison uses."""
LATEST = "v2"  # also the shipped model's (models/highway_mnist/3: seed 2, best validation)


def paths(recipe: str) -> tuple[Path, Path, Path]:
    """The table JSON, the committed records and the (ignored) run folders of a recipe."""
    name = "table1" if recipe == "v1" else f"table1_{recipe}"  # v1's paths predate v2
    return Path(f"docs/results/{name}.json"), Path(f"docs/results/{name}"), Path(f"runs/{name}")


RECORD_FILES = ("metrics.json", "history.csv", "train.log")


class SeedFailed(Exception):
    """The trainer exited with an error (it has printed its own line)."""


def run_seed(seed: int, runs: Path, records: Path, data_dir: str | None,
             recipe: tuple[str, ...] = RECIPES[LATEST]) -> dict:
    """Trains (or resumes) one seed unless it has a record; its metrics."""
    record = records / f"seed{seed}"
    if not (record / "metrics.json").is_file():
        out = runs / f"seed{seed}"
        if not (out / "metrics.json").is_file():
            cmd = [sys.executable, "-m", "training", *recipe, "--seed", str(seed),
                   "--out", str(out)]
            if data_dir:
                cmd += ["--data-dir", data_dir]
            print(f"seed {seed}: {' '.join(cmd[1:])}", flush=True)
            code = subprocess.call(cmd)
            if code == 2:  # the trainer refused its arguments or the data: rerunning won't help
                raise SeedFailed(f"seed {seed}: the trainer refused to start (see above)")
            if code != 0:
                raise SeedFailed(f"seed {seed} stopped (exit status {code}); run the same "
                                 "command again to resume it from its last finished epoch")
        record.mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            shutil.copy2(out / name, record / name)
    return json.loads((record / "metrics.json").read_text())


def write(results: dict[int, dict], seeds: tuple[int, ...], records: Path, out: Path,
          name: str = "v1") -> dict:
    """Writes recipe ``name``'s table JSON and, beside it, its plot; returns the table."""
    from training import plots

    report = {"name": name, "change": CHANGES[name],
              **table1_report.summary(results, seeds, " ".join(RECIPES[name]))}
    report["records"] = records.as_posix()  # each run's date and machine are in its row
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    curves = {s: history.read(records / f"seed{s}" / "history.csv") for s in results}
    plots.table1(report, curves, out.with_suffix(".png"))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.table1", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default=LATEST,
                   help=f"which recipe to train and tabulate (default {LATEST})")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--runs", help="folder of the per-seed run folders (default runs/table1[_V])")
    p.add_argument("--records", help="folder of the finished seeds' records "
                   "(default docs/results/table1[_V])")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (default $HIGHWAY_DATA_DIR)")
    p.add_argument("--out", help="table JSON, its PNG beside it "
                   "(default docs/results/table1[_V].json)")
    args = p.parse_args(argv)
    recipe = RECIPES[args.recipe]
    out, records, runs = (Path(given) if given else default for given, default in
                          zip((args.out, args.records, args.runs), paths(args.recipe), strict=True))
    seeds = tuple(args.seeds)
    results: dict[int, dict] = {}
    for seed in seeds:
        try:
            metrics = run_seed(seed, runs, records, args.data_dir, recipe)
        except SeedFailed as e:
            print(f"python -m training.table1: error: {e}", file=sys.stderr)
            return 1
        results[seed] = metrics
        report = write(results, seeds, records, out, args.recipe)
        print(f"seed {seed}: test {metrics['test_accuracy']:.4%}; wrote {out}", flush=True)
    print(table1_report.markdown(report), table1_report.sentence(report), sep="\n\n",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
