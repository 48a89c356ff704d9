#!/usr/bin/env bash
# Configures and builds kiln (Release) into build/. Extra args go to ninja.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build "$@"
