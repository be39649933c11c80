# Sourced by scripts/run and scripts/test: a fresh clone needs only Python 3.11+ and pip.
# uv comes from PyPI into .tools/, then builds .venv/ from the lock file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
export UV_PYTHON_DOWNLOADS=never
if [ ! -x .tools/bootstrap/bin/uv ]; then
  "$PYTHON" -m venv .tools/bootstrap
  .tools/bootstrap/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<0.14"
fi
UV="$ROOT/.tools/bootstrap/bin/uv"
"$UV" sync --frozen --all-packages --python "$("$PYTHON" -c 'import sys; print(sys.executable)')" --quiet
