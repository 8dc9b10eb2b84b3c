#!/usr/bin/env bash
# Sets everything up in .venv, trains a model and exports it into a model repository.
# Usage: bash scripts/train.sh [--data-dir DIR] [training flags…]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/venv.sh "train"
.venv/bin/highway-train --model conv16 --epochs 3 --out runs/quickstart "$@"
