#!/usr/bin/env bash
# Makes the default fact model under models/fact (or $1) with romed-fact-model,
# unless one made by the same tool sources and seed is already there.
# FACT_MODEL_SEED picks the seed (default 1); BUILD_DIR the build (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-models/fact}
SEED=${FACT_MODEL_SEED:-1}
TOOL="${BUILD_DIR:-build}/tools/fact_model/romed-fact-model"
stamp=$( (cat tools/fact_model/*.h tools/fact_model/*.cc; echo "seed=$SEED") | sha256sum | cut -d' ' -f1)
if [[ -f "$OUT/.stamp" && "$(cat "$OUT/.stamp")" == "$stamp" ]]; then
  echo "make_fact_model: $OUT is up to date"
  exit 0
fi
if [[ ! -x "$TOOL" ]]; then
  echo "make_fact_model: $TOOL is missing; build it first (scripts/build.sh)" >&2
  exit 1
fi
echo "make_fact_model: training the fact model into $OUT (~7-10 minutes on 2 idle cores)"
mkdir -p "$(dirname "$OUT")"
"$TOOL" --out="$OUT" --seed="$SEED" --force
echo "$stamp" > "$OUT/.stamp"
