#!/bin/sh
# Tests of the Python package: pip-installs it (building libkiln.so and libkiln_runtime.so in
# BUILD_DIR) into the venv BUILD_DIR/pyenv, which sees Debian's numpy, onnx and torch, then
# runs tests/python/test_kiln.py with pytest from inside the venv folder, away from the
# source tree, so the installed package is the one imported. Nothing is downloaded.
#
# Usage: tests/python/run_tests.sh BUILD_DIR [pytest arguments, e.g. -k export -v]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [pytest args]" >&2; exit 2; }
mkdir -p "$1"
build=$(cd "$1" && pwd)
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${KILN_PYTHON:-/usr/bin/python3}
venv="$build/pyenv"

[ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
KILN_BUILD_DIR="$build" "$venv/bin/python" -m pip install --quiet --no-index --no-build-isolation \
  --disable-pip-version-check "$root"

cd "$venv"
export PYTHONDONTWRITEBYTECODE=1
export KILN_CLI="${KILN_CLI:-$build/kiln}"
unset KILN_LIBRARY_DIR
exec "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir "$root/tests/python" "$root/tests/python/test_kiln.py" "$@"
