#!/usr/bin/env bash
# Renders TEXT as a test image for the OCR models: white 320x48 canvas (override with
# --size WxH), black DejaVu Sans 28 pt, vertically centred; horizontally centred by default,
# or left-aligned with a 4 px margin with --left. (PP-OCRv4 rec tends to read the wide
# blank area after left-aligned text as a trailing space: "Hello World 2026 ". Centred,
# the known-good check reads back exactly "Hello World 2026".)
# Uses Debian's ImageMagick (convert). Output is deterministic (no timestamps in the PNG),
# so re-running with the same arguments reproduces the same bytes.
# Usage: scripts/render_text.sh TEXT OUT.png [--size 320x48] [--pointsize 28] [--left]
set -euo pipefail
log() { echo "[render_text] $*" >&2; }
[ $# -ge 2 ] || { echo "usage: $0 TEXT OUT.png [--size WxH] [--pointsize N] [--left]" >&2; exit 2; }
text="$1"; out="$2"; shift 2
size=320x48; pointsize=28; gravity=Center; offset=+0+0
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --pointsize) pointsize="$2"; shift 2 ;;
    --left) gravity=West; offset=+4+0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
CONVERT="${KILN_CONVERT:-convert}"
[ -x /usr/bin/convert ] && [ -z "${KILN_CONVERT:-}" ] && CONVERT=/usr/bin/convert
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
[ -f "$FONT" ] || FONT=DejaVu-Sans
mkdir -p "$(dirname "$out")"
"$CONVERT" -size "$size" xc:white -font "$FONT" -pointsize "$pointsize" -fill black \
  -gravity "$gravity" -annotate "$offset" "$text" -type TrueColor -strip \
  -define png:exclude-chunks=date,time "PNG24:$out"
log "'$text' -> $out ($size, gravity $gravity)"
