#!/usr/bin/env bash
# Known-good OCR check: renders "Hello World 2026" (scripts/render_text.sh: 320x48, white,
# black DejaVu Sans 28 pt, centred), converts it to float32 NCHW 1x3x48x320 in [-1, 1]
# (scripts/image_to_npy.py), runs the PP-OCRv4 recognition model through kiln, decodes the
# output greedily (scripts/ocr_decode.py) and asserts it reads back exactly the text.
# Needs the model cache (scripts/fetch-models.sh); fails (never skips) when it is missing.
# Ratchet: with --expect LIST (tests/models/passing.txt), a wrong or failed recognition is a
# hard failure only when LIST names ppocr_rec/hello_world_1x3x48x320; otherwise it is
# reported and the script exits 77 (CTest shows the test as Skipped, with the reason).
# Usage: tests/models/ocr_hello.sh KILN_BIN [--expect LIST] [kiln run args, e.g. -O2]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRIPTS="$ROOT/scripts"
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
PY="${KILN_PYTHON:-/usr/bin/python3}"
TEXT="Hello World 2026"

CASE_ID="ppocr_rec/hello_world_1x3x48x320"
fail() { echo "ocr_hello: FAIL: $*" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 KILN_BIN [--expect LIST] [kiln run args...]" >&2; exit 2; }
KILN="$1"; shift
EXPECT=""
if [ "${1:-}" = "--expect" ]; then EXPECT="$2"; shift 2; fi
# A result problem: fatal if the ratchet list expects this case to pass (or no list given).
result_fail() {
  if [ -n "$EXPECT" ] && ! grep -qxF "$CASE_ID" "$EXPECT"; then
    echo "ocr_hello: NOT YET PASSING (not in $EXPECT, so not a failure): $*" >&2
    exit 77
  fi
  fail "$*"
}
[ -z "$EXPECT" ] || [ -f "$EXPECT" ] || fail "ratchet list $EXPECT not found"
[ -x "$KILN" ] || fail "kiln binary '$KILN' not found or not executable"

MODEL="$CACHE/models/ppocr/ch_PP-OCRv4_rec_infer.onnx"
KEYS="$CACHE/models/ppocr/ppocr_keys_v1.txt"
for f in "$MODEL" "$KEYS"; do
  [ -s "$f" ] || fail "$f is missing: run scripts/fetch-models.sh (KILN_CACHE=$CACHE)"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-ocr-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

"$SCRIPTS/render_text.sh" "$TEXT" "$tmp/hello.png" --size 320x48 2>/dev/null ||
  fail "render_text.sh failed (needs imagemagick + fonts-dejavu-core)"
"$PY" "$SCRIPTS/image_to_npy.py" "$tmp/hello.png" "$tmp/x.npy" --height 48 --width 320 2>/dev/null ||
  fail "image_to_npy.py failed"

start=$(date +%s%N)
set +e
"$KILN" run "$MODEL" --input "x=$tmp/x.npy" --shape x=1x3x48x320 --output-dir "$tmp/out" \
  "$@" >"$tmp/kiln.out" 2>"$tmp/kiln.err"
rc=$?
set -e
end=$(date +%s%N)
cat "$tmp/kiln.out"
if [ $rc -ne 0 ]; then
  result_fail "kiln run exited $rc: $(head -c 400 "$tmp/kiln.err")"
fi
mapfile -t outs < <(find "$tmp/out" -name '*.npy' | sort)
[ ${#outs[@]} -eq 1 ] || result_fail "expected one output .npy from kiln, got ${#outs[@]}"

got="$("$PY" "$SCRIPTS/ocr_decode.py" "${outs[0]}" "$KEYS" --score 2>"$tmp/decode.err")" ||
  fail "ocr_decode.py failed: $(cat "$tmp/decode.err")"
echo "ocr_hello: kiln read '$got' ($(tr -d '\n' <"$tmp/decode.err")), kiln run wall $(( (end - start) / 1000000 )) ms"
[ "$got" = "$TEXT" ] || result_fail "expected '$TEXT', kiln's output decodes to '$got'"
echo "ocr_hello: PASS"
