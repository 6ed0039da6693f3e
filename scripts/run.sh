#!/usr/bin/env bash
# Installs dependencies, builds romed, makes the default fact model if it is
# missing or stale, and starts the server on it. Extra arguments go to romed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/make_fact_model.sh
exec "${BUILD_DIR:-build}/server/romed" --model=models/fact --state_dir=state "$@"
