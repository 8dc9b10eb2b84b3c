#!/usr/bin/env bash
# Sets everything up in .venv, trains a conv16 highway net for a few epochs and
# exports it into the model repository runs/repository (serve it with
# `.venv/bin/highway-serve --model-repository runs/repository`).
# Usage: bash scripts/train.sh [--data-dir DIR] [more highway-train flags…]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/venv.sh "train"
data=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[i]}" = "--data-dir" ] && [ $((i + 1)) -lt ${#args[@]} ]; then
    data=(--data-dir "${args[i + 1]}")
  fi
done
.venv/bin/highway-train --model conv16 --epochs 3 --out runs/quickstart "$@"
.venv/bin/highway-export --model runs/quickstart/model.keras --repository runs/repository "${data[@]}"
echo "serve it: .venv/bin/highway-serve --model-repository runs/repository"
