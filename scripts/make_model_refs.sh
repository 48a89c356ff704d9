#!/usr/bin/env bash
# Generates ONNX Runtime reference inputs/outputs for the models in
# ${KILN_CACHE:-~/.cache/kiln}/models (two input shapes per model; see make_model_refs.py)
# into ${KILN_CACHE:-~/.cache/kiln}/refs/<model>/<shapetag>/{inputs,outputs,manifest.json}.
# Idempotent (cases whose manifest is up to date are skipped).
# Usage: scripts/make_model_refs.sh [--only MODEL ...] [--force] [--time [N]] [--threads 2]
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${KILN_PYTHON:-/usr/bin/python3}"
exec "$PY" "$SCRIPT_DIR/make_model_refs.py" "$@"
