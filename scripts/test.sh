#!/usr/bin/env bash
# Installs dependencies, builds romed and runs the whole test suite (CTest).
# Extra arguments go to ctest (e.g. -L e2e, -LE slow, -R tokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export ROMED_SOURCE_DIR="$PWD"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 1800 "$@"
