#!/usr/bin/env bash
# Generates the ONNX backend node conformance tests from Debian's python3-onnx (1.12) into
# ${KILN_CACHE:-~/.cache/kiln}/onnx-node-tests/node/test_*/{model.onnx,test_data_set_0/*.pb}
# (922 cases, opsets up to 17). The ONNX backend compares outputs with rtol 1e-3, atol 1e-7.
# Idempotent: skipped when the tests already exist (--force regenerates).
# Usage: scripts/gen_conformance.sh [--force]
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PY="${KILN_PYTHON:-/usr/bin/python3}"
OUT="$CACHE/onnx-node-tests"
log() { echo "[gen_conformance] $*" >&2; }

if [ "${1:-}" = "--force" ]; then rm -rf "$OUT"; fi
if [ -f "$OUT/.complete" ]; then
  log "present: $(find "$OUT/node" -mindepth 1 -maxdepth 1 -type d -name 'test_*' | wc -l) tests in $OUT/node"
  exit 0
fi
rm -rf "$OUT.part"
mkdir -p "$OUT.part"
log "generating ONNX $("$PY" -c 'import onnx; print(onnx.__version__)') backend node tests"
# The generator also writes simple/ (23 small model tests) and real/ (9 data.json stubs that
# point at model-zoo downloads, unreachable here); kiln uses node/.
"$PY" "$SCRIPT_DIR/gen_onnx_node_tests.py" -o "$OUT.part" >&2
n=$(find "$OUT.part/node" -mindepth 1 -maxdepth 1 -type d -name 'test_*' | wc -l)
touch "$OUT.part/.complete"
rm -rf "$OUT"
mv "$OUT.part" "$OUT"
log "wrote $n tests into $OUT/node"
