#!/usr/bin/env bash
# Runs the deployment checks (Dockerfile lint, manifests vs romed, runtime
# smoke test) without the rest of the suite: `scripts/test.sh -L deploy` does
# the same after building everything. Builds only what the checks run.
# deploy/README.md says what each check proves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" --target romed romectl romed-random-model
export ROMED_SOURCE_DIR="$PWD" ROMED_BINARY_DIR="$PWD/$BUILD_DIR"
cd "$BUILD_DIR"
ctest --output-on-failure -L deploy "$@"
