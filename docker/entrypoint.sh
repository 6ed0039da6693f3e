#!/bin/sh
# romed-entrypoint: starts romed with flags taken from the environment.
#
#   ROMED_<FLAG>=value   becomes   --<flag>=value   (upper case -> lower case)
#
# e.g. ROMED_MODEL=/models/gpt2 -> --model=/models/gpt2, ROMED_MAX_SESSIONS=50
# -> --max_sessions=50. Every romed flag can be set this way, including flags
# added after this script was written; `romed --helpfull` lists them. The
# image's defaults (ROMED_MODEL, ROMED_HOST, ROMED_STATE_DIR, ...) are in
# /etc/romed/romed.env and apply only where the variable is unset or empty.
# Arguments given to the container come last, so they win over the environment.
#
# A misspelt variable becomes an unknown flag: romed then exits 1 and its
# message names the flag (so a pod's events say why it did not start).
# Kubernetes "service link" variables (ROMED_SERVICE_HOST, ROMED_PORT_50051_TCP
# and, for a Service named romed, ROMED_PORT=tcp://...) are not flags: the
# first two patterns are skipped here; the manifests also set
# enableServiceLinks: false so ROMED_PORT is never overwritten.
#
# romed is exec'd, so it is PID 1 and receives SIGTERM itself (graceful drain).
set -eu

here=$(dirname "$0")
ROMED_BINARY=${ROMED_ENTRYPOINT_BINARY:-$here/romed}
ROMED_DEFAULTS=${ROMED_ENTRYPOINT_DEFAULTS:-$here/../../../etc/romed/romed.env}

# Defaults: KEY=VALUE lines; comments and blank lines ignored.
if [ -f "$ROMED_DEFAULTS" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    case "$key" in ROMED_[A-Z0-9_]*) ;; *)
      echo "romed-entrypoint: $ROMED_DEFAULTS: not a ROMED_ variable: $line" >&2
      exit 2 ;;
    esac
    eval "current=\${$key:-}"
    if [ -z "$current" ]; then export "$key=$value"; fi
  done <"$ROMED_DEFAULTS"
fi

# Environment -> flags, prepended so that explicit arguments come last.
names=$(env | sed -n 's/^\(ROMED_[A-Z0-9_]*\)=.*/\1/p' | sort -r)
for name in $names; do
  case "$name" in
    ROMED_ENTRYPOINT_*) continue ;;           # this script's own settings
    ROMED_SERVICE_* | ROMED_PORT_[0-9]*) continue ;;  # Kubernetes service links
  esac
  eval "value=\${$name}"
  flag=$(printf '%s' "${name#ROMED_}" | tr 'A-Z' 'a-z')
  set -- "--$flag=$value" "$@"
done

exec "$ROMED_BINARY" "$@"
