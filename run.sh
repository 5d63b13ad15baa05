#!/usr/bin/env bash
# Set up snnhw's environment on first use, then run a command inside it.
#   ./run.sh snnhw ...      the CLI          ./run.sh pytest      the test suite
# Needs Python 3.10 (pyenv's 3.10.x, or python3.10 on PATH). The first run installs uv and every
# dependency from uv.lock into .venv — torch 2.3.1 is a ~2.5 GB download the first time.
set -euo pipefail
cd "$(dirname "$0")"
export UV_PYTHON_DOWNLOADS=never
PY=""
for c in python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
  if p=$(command -v "$c" 2>/dev/null) && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    PY="$p"; break
  fi
done
if [ -z "$PY" ]; then
  echo "run.sh: error: Python 3.10 not found (lava-nc needs <3.11); install it, e.g. 'pyenv install 3.10'" >&2
  exit 2
fi
if ! "$PY" -m uv --version >/dev/null 2>&1; then
  echo "run.sh: installing uv for $PY" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check uv >&2
fi
"$PY" -m uv sync --quiet --frozen --extra test --python "$PY" >&2
# shellcheck disable=SC1091
source .venv/bin/activate
exec "$@"
