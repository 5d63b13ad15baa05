#!/usr/bin/env bash
# Set up snnhw's environment on first use, then run a command inside it.
#   ./run.sh snnhw ...      the CLI          ./run.sh pytest      the test suite
#
# Two lanes (README, "Two Python lanes"): Python 3.10 with Lava (lava-nc 0.10 / lava-dl 0.6, torch 2.3, numpy 1.26)
# — the oracle lane, verification on Lava's CPU simulator — used whenever a Python 3.10 is found
# (pyenv's, python3.10 on PATH, or uv's own managed Python when uv may download one); otherwise the
# newest Python 3.13/3.12/3.11 without Lava (current torch and numpy 2), where training verifies the
# written artifacts instead of running Lava. SNNHW_PYTHON=3.13 (or 3.11, 3.12, 3.10) picks a lane.
# The first run installs uv and every dependency pinned in uv.lock into .venv (.venv-py3.X for a lane
# chosen with SNNHW_PYTHON) — torch is a multi-GB download the first time; later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")"

has_version() { "$1" -c "import sys; sys.exit(0 if sys.version_info[:2] == ($2) else 1)" 2>/dev/null; }

find_python() {  # $1 = "3.10" -> path of a matching interpreter, or nothing
  local v="$1" c p
  for c in "python$v" "$HOME"/.pyenv/versions/"$v".*/bin/python"$v" "/usr/bin/python$v" "/usr/local/bin/python$v"; do
    if p=$(command -v "$c" 2>/dev/null) && has_version "$p" "${v/./, }"; then echo "$p"; return 0; fi
  done
  return 1
}

ensure_uv() {  # $1 = a Python to install uv into when no uv is on PATH; prints the uv command
  if command -v uv >/dev/null 2>&1; then echo uv; return; fi
  if ! "$1" -m uv --version >/dev/null 2>&1; then
    echo "run.sh: installing uv for $1" >&2
    "$1" -m pip install --quiet --disable-pip-version-check uv >&2
  fi
  echo "$1 -m uv"
}

PY="" ENV_DIR=".venv"
if [ -n "${SNNHW_PYTHON:-}" ]; then
  PY=$(find_python "$SNNHW_PYTHON") || { echo "run.sh: error: SNNHW_PYTHON=$SNNHW_PYTHON: no Python $SNNHW_PYTHON found" >&2; exit 2; }
  ENV_DIR=".venv-py$SNNHW_PYTHON"
elif PY=$(find_python 3.10); then
  :
else
  for v in 3.13 3.12 3.11; do PY=$(find_python "$v") && break || PY=""; done
  if [ -n "$PY" ] && [ "${UV_PYTHON_DOWNLOADS:-automatic}" != "never" ]; then
    UV=$(ensure_uv "$PY")
    if $UV python install 3.10 >/dev/null 2>&1 && P310=$($UV python find 3.10 2>/dev/null); then PY="$P310"; fi
  fi
  [ -n "$PY" ] || { echo "run.sh: error: no Python 3.10-3.13 found; install one, e.g. 'pyenv install 3.13'" >&2; exit 2; }
  if ! has_version "$PY" "3, 10"; then
    echo "run.sh: Python 3.10 not found: using $("$PY" -V 2>&1) without Lava — everything runs, and training verifies its exported files instead of running them on Lava (install Python 3.10 for the Lava lane)" >&2
  fi
fi
UV=$(ensure_uv "$PY")
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$ENV_DIR"
$UV sync --quiet --frozen --extra test --extra lava --python "$PY" >&2
# shellcheck disable=SC1091
source "$ENV_DIR/bin/activate"
exec "$@"
