#!/usr/bin/env bash
# CounterFact evaluation of the fact model with `romectl eval` against a real
# romed on 127.0.0.1 (a port it picks): session per case on N_SPC cases and
# sequential on N_SEQ cases (a checkpoint every EVERY edits), at the
# recommended site (top layer, fact_token last). Writes everything to OUT_DIR
# (the text reports, JSON, CSV, the sequential SVG) and prints the text
# reports; bench/results/eval_fact_model.md quotes them.
#
#   bench/eval_fact_model.sh [ROMED] [ROMECTL] [MODEL_DIR] [OUT_DIR]
#   N_SPC=100 N_SEQ=50 EVERY=5 bench/eval_fact_model.sh      (the defaults)
#
# Throughput is cases per minute of the editing phase (edit + scoring +
# generations per case); the unedited pass (scoring and generating only) in
# the same run is the baseline: the report prints its time too.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly ROMED=${1:-build/server/romed} ROMECTL=${2:-build/client/romectl}
readonly MODEL=${3:-models/fact} OUT=${4:-${TMPDIR:-/tmp}/romed-eval-fact-model}
readonly N_SPC=${N_SPC:-100} N_SEQ=${N_SEQ:-50} EVERY=${EVERY:-5}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

mkdir -p "$OUT"
STATE=$(mktemp -d "${TMPDIR:-/tmp}/romed-eval-bench.XXXXXX")
"$ROMED" --model="$MODEL" --host=127.0.0.1 --port=0 --metrics_port=0 --state_dir="$STATE" \
  >"$OUT/romed.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$STATE"' EXIT
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$OUT/romed.log" | head -1)
  [[ -n "$PORT" ]] && break
  sleep 0.1
done
[[ -n "$PORT" ]] || { echo "romed did not start: $(tail -3 "$OUT/romed.log")" >&2; exit 1; }
until "$ROMECTL" --server="127.0.0.1:$PORT" health >/dev/null 2>&1; do sleep 0.2; done
LAYER=$(( $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_layer"])' \
  "$MODEL/config.json") - 1 ))
SITE=(--layer="$LAYER" --fact_token=last)
ctl() { "$ROMECTL" --server="127.0.0.1:$PORT" --timeout_s=600 "$@"; }

# The covariance at the layer is computed once (and cached) before timing.
ctl stats --layer="$LAYER" --noprogress >/dev/null
ctl eval --dataset="$MODEL/counterfact.json" --n="$N_SPC" "${SITE[@]}" --noprogress \
  --json="$OUT/session_per_case.json" --csv="$OUT/session_per_case.csv" \
  | tee "$OUT/session_per_case.txt"
ctl eval --dataset="$MODEL/counterfact.json" --n="$N_SEQ" --sequential --every="$EVERY" \
  "${SITE[@]}" --noprogress --json="$OUT/sequential.json" --csv="$OUT/sequential.csv" \
  --svg="$OUT/sequential.svg" | tee "$OUT/sequential.txt"
