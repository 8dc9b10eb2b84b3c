"""Regenerates the committed Python stubs beside the ``.proto`` files.

``python -m protos.generate`` rewrites them; ``python -m protos.generate --check``
regenerates into a temporary folder and exits 1 if anything differs from what is
committed. protoc runs with the repository root as its include path, so the
generated modules import each other as ``protos.inference...`` while the
protobuf packages on the wire stay ``highway.v1`` and ``inference``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = (
    "protos/inference/model_config.proto",
    "protos/inference/grpc_service.proto",
    "protos/highway/v1/classifier.proto",
)
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
NOQA = "# ruff: noqa\n"


def generated_names(proto: str) -> list[str]:
    """The stub files protoc writes for one ``.proto`` (repository-relative)."""
    stem = proto.removesuffix(".proto")
    return [stem + suffix for suffix in SUFFIXES]


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc (from grpcio-tools) on every proto; returns the files written.

    protoc runs in a child process: its bundled C++ protobuf does not mix well
    with the protobuf runtime already loaded by a long-lived process (pytest).
    """
    args = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(ROOT / p) for p in PROTOS),
    ]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed: {done.stderr.strip()}")
    written = [out_dir / name for p in PROTOS for name in generated_names(p)]
    for stub in written:
        if stub.suffix == ".pyi":
            # The generated stubs break the project's lint style (long lines,
            # typing.Optional); they are never edited by hand, so ruff skips them.
            stub.write_text(NOQA + stub.read_text())
    return written


def differences() -> list[str]:
    """Committed stub files that regenerating would change (empty: up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        changed = []
        for p in PROTOS:
            for name in generated_names(p):
                fresh = (Path(tmp) / name).read_bytes()
                committed = ROOT / name
                if not committed.exists() or committed.read_bytes() != fresh:
                    changed.append(name)
        return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protos.generate", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed stubs differ from freshly generated ones")
    args = parser.parse_args(argv)
    if args.check:
        changed = differences()
        for name in changed:
            print(f"out of date: {name}", file=sys.stderr)
        return 1 if changed else 0
    written = generate(ROOT)
    print(f"wrote {len(written)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
