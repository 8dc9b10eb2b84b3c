#!/usr/bin/env bash
# Sets up .venv with the server's dependencies only (no TensorFlow) and serves the
# shipped model repository (models/) over gRPC on :8001, Prometheus /metrics on :8002.
# Extra arguments go to highway-serve (e.g. --device cpu, --grpc-port 9001).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/venv.sh ""
exec .venv/bin/highway-serve "$@"
