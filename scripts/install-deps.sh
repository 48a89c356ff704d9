#!/usr/bin/env bash
# Installs everything kiln needs to build, test and run its demo on a fresh Debian 12
# machine. Idempotent: packages already present are skipped by apt, npm packages by
# checking the cache folder. Needs root (or sudo) for apt-get.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

PKGS=(
  build-essential cmake ninja-build pkg-config git ccache
  llvm-16-dev libzstd-dev zlib1g-dev libxml2-dev libedit-dev libffi-dev libncurses-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev nlohmann-json3-dev
  python3 python3-numpy python3-onnx python3-torch python3-torchvision python3-matplotlib
  python3-pip python3-venv python3-setuptools python3-pytest
  g++-aarch64-linux-gnu libc6-arm64-cross qemu-user-static binutils
  imagemagick fonts-dejavu-core
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "[install-deps] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "[install-deps] all Debian packages present"
fi

# ONNX Runtime for reference outputs (test-time only; never linked into kiln).
CACHE="${KILN_CACHE:-$HOME/.cache/kiln}"
ORT_DIR="$CACHE/ort"
if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ]; then
  echo "[install-deps] installing onnxruntime-node@1.30.0 into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  (cd "$ORT_DIR" && [ -f package.json ] || echo '{"name":"kiln-ort","private":true}' > "$ORT_DIR/package.json")
  (cd "$ORT_DIR" && npm install --silent --no-audit --no-fund --ignore-scripts onnxruntime-node@1.30.0)
fi
echo "[install-deps] done"
