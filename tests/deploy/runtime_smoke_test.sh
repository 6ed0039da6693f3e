#!/usr/bin/env bash
# Container-like smoke test of the runtime image's file set, without Docker.
#
#   runtime_smoke_test.sh BUILD_DIR ROMED_RANDOM_MODEL
#
# 1. docker/assemble-runtime.sh builds the runtime stage's file set (the same
#    docker/runtime-files.txt the Dockerfile uses) into ROOT.
# 2. With a clean environment (env -i) and LD_LIBRARY_PATH=ROOT's library
#    directory only, ldd must resolve every library of every bundled program
#    inside ROOT, except glibc's (the base image's package libc6).
# 3. Bad input through the image's entrypoint: a missing model directory, an
#    unknown flag, a malformed port and an unknown device each exit non-zero
#    with a message naming the flag.
# 4. romed, started by the bundled entrypoint from ROMED_* variables as in the
#    image, serves a tiny random checkpoint on 127.0.0.1 (--port=0): the
#    bundled romectl sees SERVING and generates; SIGTERM then drains and romed
#    exits 0.
# Loopback only. ROMED_SMOKE_KEEP=1 keeps the work directory.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR ROMED_RANDOM_MODEL" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
RANDOM_MODEL=$2
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
readonly BUILD_DIR RANDOM_MODEL SOURCE_DIR
readonly START_S=${ROMED_SMOKE_START_S:-60} DRAIN_S=2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-runtime.XXXXXX")
readonly WORK ROOT=$WORK/root
readonly LIBS=$ROOT/usr/local/lib/romed BIN=$ROOT/usr/local/bin
SERVER_PID=""
FAILURES=0
PASSES=0

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${ROMED_SMOKE_KEEP:-0}" == 1 || $FAILURES -gt 0 ]]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

pass() { echo "PASS: $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
die() { fail "$*"; [[ -f $WORK/romed.log ]] && tail -20 "$WORK/romed.log" >&2; exit 1; }

# The environment of a process in the image: nothing from this shell, libraries
# from the bundle only (the image's ENV sets OMP_WAIT_POLICY).
readonly IMAGE_ENV=(env -i LD_LIBRARY_PATH="$LIBS" OMP_WAIT_POLICY=passive PATH=/usr/bin:/bin)
# The entrypoint's settings here: loopback and a free port, whatever the defaults say.
readonly LOOPBACK=(ROMED_HOST=127.0.0.1 ROMED_PORT=0 ROMED_METRICS_PORT=0
  ROMED_STATE_DIR="$WORK/state" ROMED_THREADS=1)

in_image() { "${IMAGE_ENV[@]}" "$@"; }
entrypoint() { "${IMAGE_ENV[@]}" "${LOOPBACK[@]}" "$@" "$BIN/romed-entrypoint"; }

assemble() {
  env BUILD_DIR="$BUILD_DIR" ROMED_ASSEMBLE_HARDLINK=1 \
    "$SOURCE_DIR/docker/assemble-runtime.sh" "$ROOT" >"$WORK/assemble.log" 2>&1 ||
    die "assemble-runtime.sh failed: $(tail -5 "$WORK/assemble.log")"
  pass "assembled the runtime file set: $(tail -1 "$WORK/assemble.log")"
}

check_libraries() {
  local glibc program line outside missing
  glibc=" $(dpkg -L libc6 | sed -n 's|.*/\([^/]*\.so[^/]*\)$|\1|p' | sort -u | tr '\n' ' ') "
  for program in "$BIN"/*; do
    [[ $(head -c 4 "$program" | od -An -c | tr -d ' ') == '177ELF' ]] || continue
    in_image /usr/bin/ldd "$program" >"$WORK/ldd.txt" 2>&1 || true
    missing=$(grep "not found" "$WORK/ldd.txt" || true)
    outside=""
    while IFS= read -r line; do
      [[ $line =~ ^[[:space:]]*([^[:space:]]+)\ =\>\ (/[^[:space:]]+) ]] || continue
      [[ ${BASH_REMATCH[2]} == "$ROOT"/* ]] && continue
      [[ $glibc == *" ${BASH_REMATCH[1]} "* ]] && continue
      outside+=" ${BASH_REMATCH[1]}=>${BASH_REMATCH[2]}"
    done <"$WORK/ldd.txt"
    if [[ -z $missing && -z $outside ]]; then
      pass "$(basename "$program"): ldd resolves all $(grep -c '=>' "$WORK/ldd.txt") libraries inside the bundle or glibc"
    else
      fail "$(basename "$program"): missing [$missing] outside the bundle [$outside]"
    fi
  done
}

make_model() {
  "$RANDOM_MODEL" --config=gpt2 --n_layer=2 --n_embd=64 --n_head=2 --byte_level \
    --out="$WORK/model" --seed=1 >"$WORK/random_model.log" 2>&1 ||
    die "romed-random-model failed: $(tail -5 "$WORK/random_model.log")"
}

# expect_refusal WHAT PATTERN VAR=value...: the entrypoint exits non-zero and
# its output matches PATTERN (the flag's name).
expect_refusal() {
  local what=$1 pattern=$2 rc=0
  shift 2
  entrypoint "$@" >"$WORK/bad.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]] && grep -q -- "$pattern" "$WORK/bad.log"; then
    pass "$what: exit $rc, '$(grep -m1 -- "$pattern" "$WORK/bad.log" | cut -c1-110)'"
  else
    fail "$what: exit $rc, expected a message matching '$pattern': $(tail -3 "$WORK/bad.log")"
  fi
}

check_bad_input() {
  expect_refusal "missing model directory" "--model=$WORK/no-such-model" ROMED_MODEL="$WORK/no-such-model"
  expect_refusal "unknown flag" "no_such_flag" ROMED_MODEL="$WORK/model" ROMED_NO_SUCH_FLAG=1
  expect_refusal "malformed port" "'port'" ROMED_MODEL="$WORK/model" ROMED_PORT=http
  expect_refusal "unknown device" "--device=tpu" ROMED_MODEL="$WORK/model" ROMED_DEVICE=tpu
}

ctl() { in_image "$BIN/romectl" --server="$SERVER" --timeout_s=10 "$@"; }

check_serving() {
  local port="" deadline rc=0
  # exec all the way down (env, entrypoint, romed), so SERVER_PID is romed.
  (exec "${IMAGE_ENV[@]}" "${LOOPBACK[@]}" ROMED_MODEL="$WORK/model" ROMED_DRAIN_SECONDS=$DRAIN_S \
    "$BIN/romed-entrypoint") >"$WORK/romed.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/romed.log" | head -1)
    [[ -n $port ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited at start: $(tail -3 "$WORK/romed.log")"
    sleep 0.1
  done
  [[ -n $port ]] || die "romed logged no listening address"
  SERVER=127.0.0.1:$port
  deadline=$((SECONDS + START_S))
  until [[ $(ctl health 2>/dev/null) == SERVING ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited while loading: $(tail -3 "$WORK/romed.log")"
    ((SECONDS < deadline)) || die "not SERVING within $START_S s"
    sleep 0.3
  done
  pass "romed from the bundle is SERVING on $SERVER ($(grep -o 'blas=[^ ]*' "$WORK/romed.log" | head -1))"
  if ctl generate --prompt="Hello" --max_new_tokens=4 >"$WORK/gen.out" 2>&1; then
    pass "bundled romectl generates through the bundled libtorch"
  else
    fail "generate: $(cat "$WORK/gen.out")"
  fi
  kill -TERM "$SERVER_PID"
  deadline=$((SECONDS + DRAIN_S + 15))
  while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$SERVER_PID" 2>/dev/null && die "romed still running $((DRAIN_S + 15)) s after SIGTERM"
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  if [[ $rc -eq 0 ]] && grep -q "stopped" "$WORK/romed.log"; then
    pass "SIGTERM: romed drained and exited 0"
  else
    fail "SIGTERM: exit $rc: $(tail -3 "$WORK/romed.log")"
  fi
}

assemble
check_libraries
make_model
check_bad_input
check_serving
echo "$PASSES passed, $FAILURES failed"
((FAILURES == 0))
