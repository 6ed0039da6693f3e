#!/usr/bin/env bash
# docker/entrypoint.sh maps the environment onto romed's flags as documented:
# image defaults (docker/romed.env) apply where a variable is unset,
# ROMED_<FLAG> becomes --<flag>, container arguments come last, Kubernetes
# service-link variables are skipped, values keep their spaces.
# Runs the entrypoint with a stand-in for romed that prints its arguments.
set -euo pipefail
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-entrypoint.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
printf '#!/bin/sh\nfor a in "$@"; do printf "%%s\\n" "$a"; done\n' >"$WORK/romed"
chmod +x "$WORK/romed"
passes=0
failures=0

# run VAR=value... [-- ARGS...]: the arguments romed would get, one per line.
run() {
  local vars=()
  while [[ $# -gt 0 && $1 != -- ]]; do vars+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  env -i PATH=/usr/bin:/bin ROMED_ENTRYPOINT_BINARY="$WORK/romed" \
    ROMED_ENTRYPOINT_DEFAULTS="$SOURCE_DIR/docker/romed.env" "${vars[@]}" \
    sh "$SOURCE_DIR/docker/entrypoint.sh" "$@"
}

expect() {
  local what=$1 want=$2 got=$3
  if [[ $got == "$want" ]]; then
    echo "PASS: $what"; passes=$((passes + 1))
  else
    echo "FAIL: $what"; echo "  want: ${want//$'\n'/ }"; echo "  got:  ${got//$'\n'/ }"
    failures=$((failures + 1))
  fi
}

defaults=$(sed -n 's/^ROMED_\([A-Z0-9_]*\)=\(.*\)$/\1 \2/p' "$SOURCE_DIR/docker/romed.env" |
  while read -r k v; do echo "--$(tr 'A-Z' 'a-z' <<<"$k")=$v"; done | sort)
expect "no environment: the image defaults" "$defaults" "$(run | sort)"
expect "ROMED_MODEL replaces the default --model" "--model=/models/gpt2" \
  "$(run ROMED_MODEL=/models/gpt2 | grep -- '^--model=')"
expect "an empty variable keeps the default" "--model=/models/fact" \
  "$(run ROMED_MODEL= | grep -- '^--model=')"
expect "any ROMED_<FLAG> becomes --<flag>" "--max_new_tokens=64" \
  "$(run ROMED_MAX_NEW_TOKENS=64 | grep -- '^--max_new')"
expect "container arguments come last" "--port=7000" "$(run ROMED_PORT=6000 -- --port=7000 | tail -1)"
expect "service links are not flags" "" \
  "$(run ROMED_SERVICE_HOST=10.0.0.1 ROMED_PORT_50051_TCP=tcp://10.0.0.1:50051 | grep -E -- '--(service|port_)' || true)"
expect "a value keeps its spaces" "--stop=a b" "$(run 'ROMED_STOP=a b' | grep -- '^--stop')"
echo "$passes passed, $failures failed"
((failures == 0))
