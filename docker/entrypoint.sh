#!/bin/sh
# Starts romed with flags from the environment; explicit arguments win.
#   ROMED_MODEL (default /models/fact), ROMED_PORT (50051),
#   ROMED_METRICS_PORT (9090), ROMED_STATE_DIR (/state), ROMED_DEVICE (cpu)
set -eu
exec /usr/local/bin/romed \
  --model="${ROMED_MODEL:-/models/fact}" \
  --host=0.0.0.0 \
  --port="${ROMED_PORT:-50051}" \
  --metrics_port="${ROMED_METRICS_PORT:-9090}" \
  --state_dir="${ROMED_STATE_DIR:-/state}" \
  --device="${ROMED_DEVICE:-cpu}" \
  "$@"
