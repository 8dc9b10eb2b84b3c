#!/usr/bin/env bash
# Creates (or reuses) .venv with Python 3.11 and installs the project with the
# extras named in $1 (e.g. "train,dev"). Sourced by the other scripts.
# $VENV names another folder (e.g. .venv-server for the server-only test run).
set -euo pipefail
extras="${1:-}"
venv="${VENV:-.venv}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    py="$candidate"; break
  fi
done
if [ -z "$py" ]; then
  echo "error: Python 3.11 is required (python3.11 or python3 must be 3.11)" >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv with $($py --version)"
  "$py" -m venv "$venv"
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
echo "==> installing $spec into $venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# PYTHONWARNINGS: setuptools' note that an editable install is editable is not for users.
PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$spec"
