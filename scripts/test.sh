#!/usr/bin/env bash
# Every kiln test on a fresh Debian 12 machine: installs dependencies, fetches models and
# generates reference data (cached in ${KILN_CACHE:-~/.cache/kiln}), builds kiln (Release)
# and the unit tests again under AddressSanitizer + UBSan, then runs all of CTest.
# Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { echo "==> $*" >&2; }
JOBS="$(nproc)"

step "installing dependencies"
bash scripts/install-deps.sh
step "fetching models and generating reference data"
bash scripts/fetch-models.sh --torch
bash scripts/gen_conformance.sh
bash scripts/make_model_refs.sh

step "building (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j"$JOBS"
step "cross-building the runtime for aarch64 (tests run it under qemu)"
cmake -S . -B build-aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DKILN_RUNTIME_ONLY=ON >/dev/null
ninja -C build-aarch64 -j"$JOBS"
step "building unit tests under ASan + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$JOBS" kiln_unit_tests

step "running tests"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-asan --output-on-failure -L unit -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS" "$@"
