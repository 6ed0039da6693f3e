#!/usr/bin/env bash
# Lints the Dockerfile: dockerfilelint (npm, third_party/deploy_tools) with
# docker/.dockerfilelintrc, then checks dockerfilelint cannot: every external
# base image names a version tag (not latest), and the entrypoint and the
# runtime assembly script parse.
#
#   lint_dockerfile.sh [SOURCE_DIR]
set -euo pipefail
SOURCE_DIR=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
TOOLS=${ROMED_DEPLOY_TOOLS:-$SOURCE_DIR/third_party/deploy_tools/node_modules}
LINT=$TOOLS/dockerfilelint/bin/dockerfilelint
passes=0
failures=0
pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [[ ! -x $LINT ]]; then
  echo "FAIL: $LINT not found: run scripts/setup.sh"
  exit 1
fi
if out=$(node "$LINT" -c "$SOURCE_DIR/docker" "$SOURCE_DIR/Dockerfile" 2>&1); then
  pass "dockerfilelint: no issues"
else
  fail "dockerfilelint:"
  echo "$out"
fi

# FROM IMAGE [AS NAME]: IMAGE is an earlier stage or carries a tag.
stages=" "
while read -r _ image _ name; do
  if [[ $stages == *" ${image} "* || $image == *'${VARIANT}'* ]]; then
    :
  elif [[ $image =~ :[A-Za-z0-9_.-]+$ && $image != *:latest ]]; then
    pass "FROM $image has a version tag"
  else
    fail "FROM $image: name a version tag"
  fi
  [[ -n ${name:-} ]] && stages+="$name "
done < <(grep -iE '^FROM ' "$SOURCE_DIR/Dockerfile")

if sh -n "$SOURCE_DIR/docker/entrypoint.sh"; then pass "docker/entrypoint.sh parses with sh"; else fail "docker/entrypoint.sh"; fi
if bash -n "$SOURCE_DIR/docker/assemble-runtime.sh"; then pass "docker/assemble-runtime.sh parses"; else fail "assemble-runtime.sh"; fi
echo "$passes passed, $failures failed"
((failures == 0))
