#!/usr/bin/env bash
# Installs dependencies, builds romed and runs the test suite (CTest).
#
# By default every test runs except those labelled `slow` (the full fact
# model's training and quality targets, ~10+ min on 2 cores). ROMED_SLOW=1
# also makes the full fact model (scripts/make_fact_model.sh, cached under
# models/fact) and runs everything against it. Extra arguments go to ctest
# (e.g. -L e2e, -R tokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export ROMED_SOURCE_DIR="$PWD"
# Tests that run the tools find them here (also when ctest is run by hand: export it).
export ROMED_BINARY_DIR="$PWD/${BUILD_DIR:-build}"
label_args=(-LE slow)
if [[ "${ROMED_SLOW:-0}" == "1" ]]; then
  bash scripts/make_fact_model.sh models/fact
  export ROMED_FACT_MODEL_DIR="$PWD/models/fact"
  label_args=()
fi
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 1800 "${label_args[@]}" "$@"
