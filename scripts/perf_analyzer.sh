#!/usr/bin/env bash
# Runs Triton's perf_analyzer against the highway server over gRPC (KServe V2 ModelInfer,
# or ModelStreamInfer with --streaming).
#
#   bash scripts/perf_analyzer.sh                        # server already on localhost:8001
#   bash scripts/perf_analyzer.sh --url HOST:PORT --out docs/perf/perf_analyzer
#   bash scripts/perf_analyzer.sh --serve models         # start python -m server, stop after
#   bash scripts/perf_analyzer.sh --serve-floor --out docs/perf/perf_analyzer_floor
#                                   # the gRPC floor instead: Python gRPC, no model
#   bash scripts/perf_analyzer.sh --serve models --streaming
#                                   # ModelStreamInfer: one bidirectional stream per
#                                   # concurrency slot (default out: ..._streaming)
#
# perf_analyzer comes from the tritonclient==2.45.0 wheel (newer wheels need a newer
# glibc than Debian 12's), installed into its own venv under build/perf_analyzer/
# (never the project's .venv). The binary needs Debian's libb64-0d (apt) and
# libcudart.so.12, taken from the nvidia-cuda-runtime-cu12 wheel via LD_LIBRARY_PATH.
# Output: one log + CSV per batch size under --out, and summary.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

url="localhost:8001"
out=""
serve=""
streaming=""
model="highway_mnist"
concurrency="1 2 4 8 16"
batches="1 64"
interval_ms="${PA_INTERVAL_MS:-4000}"
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --serve) serve="$2"; shift 2 ;;
    --serve-floor) serve="floor"; shift ;;
    --streaming) streaming="--streaming"; shift ;;
    --model) model="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "perf_analyzer.sh: error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ -n "$out" ] || out="docs/perf/perf_analyzer${streaming:+_streaming}"

venv="build/perf_analyzer/venv"
if [ ! -x "$venv/bin/perf_analyzer" ]; then
  py=""
  for candidate in python3.11 python3; do
    command -v "$candidate" >/dev/null && { py="$candidate"; break; }
  done
  [ -n "$py" ] || { echo "perf_analyzer.sh: error: python3 not found" >&2; exit 2; }
  echo "==> installing tritonclient==2.45.0 (perf_analyzer) into $venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "tritonclient==2.45.0" "nvidia-cuda-runtime-cu12"
fi
if ! ldconfig -p | grep -q "libb64.so.0d"; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing libb64-0d (apt)"
    apt-get install -y -q libb64-0d >/dev/null
  else
    echo "perf_analyzer.sh: error: libb64-0d is missing: sudo apt-get install libb64-0d" >&2
    exit 2
  fi
fi
cudart="$(dirname "$(find "$venv" -name 'libcudart.so.12' | head -1)")"
export LD_LIBRARY_PATH="$cudart${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
pa="$venv/bin/perf_analyzer"

server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" || true; }
trap cleanup EXIT
if [ -n "$serve" ]; then
  port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  url="127.0.0.1:$port"
  if [ "$serve" = floor ]; then
    echo "==> starting the gRPC floor (python -m bench.floor) on $url"
    .venv/bin/python -m bench.floor --port "$port" &
  else
    echo "==> starting python -m server on $url ($serve)"
    .venv/bin/python -m server --model-repository "$serve" --host 127.0.0.1 --grpc-port "$port" \
      --metrics-port -1 --device cpu --log-level WARNING &
  fi
  server_pid=$!
fi
echo "==> waiting for $url"
for _ in $(seq 1 240); do
  if .venv/bin/python - "$url" "$model" <<'EOF' 2>/dev/null; then break; fi
import sys
import grpc
from protos.inference import grpc_service_pb2 as pb, grpc_service_pb2_grpc as svc
with grpc.insecure_channel(sys.argv[1]) as ch:
    ok = svc.GRPCInferenceServiceStub(ch).ModelReady(pb.ModelReadyRequest(name=sys.argv[2]),
                                                     timeout=1).ready
sys.exit(0 if ok else 1)
EOF
  sleep 0.5
done

mkdir -p "$out"
summary="$out/summary.txt"
{
  echo "# perf_analyzer (tritonclient 2.45.0) vs $url, model $model${streaming:+, gRPC streaming}," \
       "$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$summary"
for b in $batches; do
  for c in $concurrency; do
    name="b${b}_c${c}"
    echo "==> perf_analyzer batch $b concurrency $c"
    "$pa" -m "$model" -i grpc $streaming -u "$url" -b "$b" --concurrency-range "$c" \
      --input-data random --measurement-interval "$interval_ms" --max-trials 10 \
      --stability-percentage "${PA_STABILITY:-25}" --percentile 50 -f "$out/$name.csv" --verbose-csv \
      > "$out/$name.log" 2>&1 || echo "   (perf_analyzer exited $?; see $out/$name.log)"
    grep -E "Concurrency: $c, throughput" "$out/$name.log" | sed "s/^/batch $b: /" \
      | tee -a "$summary" || true
  done
done
echo "==> wrote $out/"
