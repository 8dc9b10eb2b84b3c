#!/usr/bin/env bash
# The server's tests on the server's install: .venv-server holds `.[dev]` only (no
# TensorFlow, no tf2onnx, no onnx), and runs tests/server, tests/reliability and
# tests/bench on the committed model repository fixture. A test there that needed
# TensorFlow would fail here, not skip. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.venv-server bash scripts/venv.sh "dev"
echo "==> checking that .venv-server has no TensorFlow"
if .venv-server/bin/python -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is None)'; then
  echo "error: tensorflow is importable in .venv-server; the server's install must not need it" >&2
  exit 1
fi
echo "==> pytest (server, reliability, bench) without TensorFlow"
.venv-server/bin/python -m pytest tests/server tests/reliability tests/bench "$@"
