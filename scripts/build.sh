#!/usr/bin/env bash
# Configures and builds romed into build/ (Release). Extra args go to cmake configure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
WERROR=OFF
if [[ "${CI:-}" == "true" ]]; then WERROR=ON; fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DROMED_WERROR=$WERROR "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
