#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, install onnxruntime-gpu offline
# from its pieces, measure raw ONNX Runtime on CUDA at batch 1 and 64 (plain run
# and IO binding), check CUDA-vs-CPU parity, run the server benchmark on CUDA
# (single images at concurrency 16 over every API the benchmark knows, streaming
# included where it has it), and write docs/perf/gpu.json.
#
#   bash scripts/gpu_check.sh [--pieces DIR] [--out FILE] [--seconds S] [--quick]
#   bash scripts/gpu_check.sh --dry-run-cpu [--out FILE] [--quick] [--no-server]
#     (--dry-run-cpu: no GPU, no install; the same measurements on the CPU provider)
#
# --pieces DIR: the folder holding .gpu1/ .gpu2/ … (onnxruntime-gpu wheel split into
#   parts of at most 50 MiB, file name in .gpu1/WHEEL_NAME); default: the repository
#   root, where the splitting script (make-chunks.sh, kept with the pieces) puts them.
# The wheel is a CUDA 13 build for one Python version (cp312 for 1.31.1): PYTHON
# (default python3) must match it and have numpy; the server part also needs
# grpcio, protobuf and prometheus_client (else it is skipped, and the JSON says so).
# CUDA 13 and cuDNN 9 libraries must be on the machine (e.g. nvidia-* wheels; their
# lib folders are added to LD_LIBRARY_PATH). Exit 1 with one line on any problem.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pieces="$repo" out="$repo/docs/perf/gpu.json" seconds=5 duration=10 dry=0 no_server=0
py="${PYTHON:-python3}"
die() { echo "gpu_check: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --pieces) [ $# -ge 2 ] || die "--pieces needs a folder"; pieces="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a file"; out="$2"; shift 2 ;;
    --seconds) [[ "${2:-}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--seconds needs a number"
               seconds="$2"; shift 2 ;;
    --quick) seconds=0.3 duration=0.5; shift ;;
    --no-server) no_server=1; shift ;;
    --dry-run-cpu) dry=1; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
command -v "$py" >/dev/null 2>&1 || die "no Python interpreter '$py' (set PYTHON)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
device=cpu

if [ "$dry" = 0 ]; then
  gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
  [ "${gpus:-0}" -gt 0 ] || die "no NVIDIA GPU visible (nvidia-smi lists none); run this on a GPU machine, or use --dry-run-cpu"
  [ -f "$pieces/.gpu1/WHEEL_NAME" ] || die "no onnxruntime-gpu pieces in $pieces (expected .gpu1/WHEEL_NAME and .gpu*/part-*)"
  wheel="$tmp/$(cat "$pieces/.gpu1/WHEEL_NAME")"
  # .gpu1 .gpu2 … .gpu10 in numeric order; each folder holds consecutive parts
  find "$pieces" -maxdepth 2 -path "$pieces/.gpu*/part-*" | sort -V | xargs cat > "$wheel"
  tag="$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  case "$(basename "$wheel")" in *"-$tag-"*) ;; *) die "$(basename "$wheel") does not fit $py ($tag); set PYTHON to a matching interpreter" ;; esac
  "$py" -m pip install -q --no-deps --no-index --target "$tmp/site" "$wheel" >"$tmp/pip.log" 2>&1 \
    || die "cannot install $(basename "$wheel"): $(tail -n 1 "$tmp/pip.log")"
  export PYTHONPATH="$tmp/site:$repo${PYTHONPATH:+:$PYTHONPATH}"
  libs="$("$py" - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib"))})))
EOF
)"
  [ -z "$libs" ] || export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  device=cuda
else
  export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi

"$py" -c 'import numpy, onnxruntime' 2>/dev/null \
  || die "$py cannot import numpy and onnxruntime (set PYTHON to an interpreter that can)"

# The shipped fp32 version (models/<name>/<version>/model.onnx, whose one home is
# highway_core/facts.py): int8 QDQ models are a CPU recipe (CUDA runs their Q/DQ pairs as-is).
shipped="$("$py" -c 'from highway_core.facts import shipped_model; print(shipped_model().as_posix())')" \
  || die "cannot read the shipped model's path from highway_core/facts.py"
version_dir="$(dirname "$shipped")" model_dir="$(dirname "$(dirname "$shipped")")"
model_repo="$tmp/repository" copy="$tmp/repository/$(basename "$model_dir")"
mkdir -p "$copy"
cp "$repo/$model_dir/config.pbtxt" "$repo/$model_dir/labels.txt" "$copy/"
cp -r "$repo/$version_dir" "$copy/"
model="$model_repo/${shipped#*/}"

echo "gpu_check: raw ONNX Runtime on $device, batch 1 and 64" >&2
"$py" "$repo/scripts/gpu_check.py" raw --model "$model" --device "$device" --batches 1,64 \
  --seconds "$seconds" --out "$tmp/raw.json"

# python -m bench where the benchmark has moved there, else python -m server.bench
if [ -f "$repo/bench/__main__.py" ]; then bench=bench main=bench.__main__
else bench=server.bench main=server.bench; fi
if [ "$no_server" = 1 ]; then
  server=("--server-skipped=not run (--no-server)")
elif ! missing="$("$py" -c 'import grpc, google.protobuf, prometheus_client' 2>&1)"; then
  server=("--server-skipped=missing Python modules: $(tail -n 1 <<<"$missing")")
else
  apis="$("$py" -c "from $main import METHODS; print(','.join(METHODS))" 2>/dev/null \
    || echo ModelInfer,Predict)"
  echo "gpu_check: server on $device ($bench), 1 image at c=16: $apis" >&2
  (cd "$repo" && "$py" -m "$bench" --repository "$model_repo" --device "$device" \
    --loads 1x16 --apis "$apis" --no-naive --no-floor --duration "$duration" \
    --warmup "$seconds" --raw-seconds "$seconds" --out "$tmp/server.json") \
    >"$tmp/server.log" 2>&1 || die "server benchmark failed: $(tail -n 1 "$tmp/server.log")"
  server=(--server "$tmp/server.json")
fi

flags=()
[ "$dry" = 0 ] || flags+=(--dry-run)
"$py" "$repo/scripts/gpu_check.py" merge --raw "$tmp/raw.json" "${server[@]}" "${flags[@]}" \
  --model "$shipped (fp32)" --scratch "$tmp" --out "$out"
echo "gpu_check: wrote $out" >&2
