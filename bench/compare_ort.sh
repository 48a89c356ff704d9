#!/usr/bin/env bash
# kiln against ONNX Runtime: interleaved timing of the model set, relative L2 of the outputs,
# FMA peak and GEMM GFLOP/s, compile time. Regenerates docs/PERFORMANCE.md and
# docs/perf_ratios.png (logic in bench/compare_ort.py; `--help` lists the options).
#
#   bench/compare_ort.sh                       # full run: 10 interleaved rounds x 5 iterations, all models
#   bench/compare_ort.sh --quick --models resnet18,mobilenet_v2,gemm    # smoke run
#
# Installs ONNX Runtime (scripts/install-deps.sh) only when it is missing, builds kiln only
# when build/kiln is missing, fetches the models only when one is missing. Run it on a quiet
# machine: other load shows up directly in the numbers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PY="${KILN_PYTHON:-/usr/bin/python3}"
log() { echo "[compare_ort] $*" >&2; }

for a in "$@"; do
  case "$a" in -h|--help) exec "$PY" bench/compare_ort.py --help ;; esac
done

if ! command -v node >/dev/null 2>&1 || \
   [ ! -f "$CACHE/ort/node_modules/onnxruntime-node/package.json" ]; then
  log "ONNX Runtime missing: scripts/install-deps.sh"
  scripts/install-deps.sh
fi

if [ ! -x build/kiln ]; then
  log "build/kiln missing: scripts/build.sh"
  scripts/build.sh
fi

models=(torch/resnet18.onnx torch/resnet50.onnx torch/mobilenet_v2.onnx torch/mobilenet_v3_large.onnx
        torch/bert_like.onnx ppocr/ch_PP-OCRv4_det_infer.onnx ppocr/ch_PP-OCRv4_rec_infer.onnx)
for m in "${models[@]}"; do
  if [ ! -s "$CACHE/models/$m" ]; then
    log "$m missing: scripts/fetch-models.sh --torch"
    scripts/fetch-models.sh --torch
    break
  fi
done

exec "$PY" bench/compare_ort.py "$@"
