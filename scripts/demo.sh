#!/usr/bin/env bash
# kiln's main job on a fresh Debian 12 machine: install what's needed, build kiln, fetch
# the real PP-OCRv4 text-recognition model, render an image of "Hello World 2026", run the
# model through kiln (ONNX -> Graph IR -> Loop IR -> LLVM JIT) and print what it reads.
# Usage: scripts/demo.sh ["TEXT TO READ"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TEXT="${1:-Hello World 2026}"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PY=/usr/bin/python3
step() { echo "==> $*" >&2; }

step "installing dependencies (apt, npm)"
bash scripts/install-deps.sh
step "building kiln"
bash scripts/build.sh kiln
step "fetching PP-OCRv4 models"
bash scripts/fetch-models.sh
MODEL="$CACHE/models/ppocr/ch_PP-OCRv4_rec_infer.onnx"
KEYS="$CACHE/models/ppocr/ppocr_keys_v1.txt"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
step "rendering \"$TEXT\" (320x48, DejaVu Sans 28pt)"
bash scripts/render_text.sh "$TEXT" "$WORK/text.png"
$PY scripts/image_to_npy.py "$WORK/text.png" "$WORK/text.npy" --height 48 --width 320

step "what kiln sees in the model"
./build/kiln inspect "$MODEL" | sed -n '1,12p'
step "running the model through kiln"
./build/kiln run "$MODEL" --input x="$WORK/text.npy" --output-dir "$WORK/out" | tee "$WORK/run.txt"
LOGITS="$(ls "$WORK"/out/*.npy | head -1)"
READ="$($PY scripts/ocr_decode.py "$LOGITS" "$KEYS")"
echo
echo "kiln read:  \"$READ\""
echo "expected:   \"$TEXT\""
grep -E '^compile' "$WORK/run.txt" | sed 's/^/time:       /'
[ "$READ" = "$TEXT" ]
