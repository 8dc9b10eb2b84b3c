#!/usr/bin/env bash
# Sets everything up in .venv and runs the linter and the whole test suite.
# Extra arguments go to pytest (e.g. -m slow, -k server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/venv.sh "train,dev"
echo "==> ruff"
.venv/bin/ruff check highway_core training export server protos tests bench scripts
echo "==> hadolint"
.venv/bin/hadolint Dockerfile
echo "==> pytest"
.venv/bin/python -m pytest "$@"
