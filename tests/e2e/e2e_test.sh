#!/usr/bin/env bash
# End-to-end: a real romed on a tiny random checkpoint, driven by romectl.
#
#   e2e_test.sh ROMED ROMECTL ROMED_RANDOM_MODEL
#
# Makes a 2-layer byte-level checkpoint, starts romed on 127.0.0.1 (gRPC on a
# port the server picks, metrics on a free port found here), waits until
# `romectl health` says SERVING, exercises every working RPC through romectl
# (including exit codes and an error case), scrapes /metrics with bash's
# /dev/tcp, then sends SIGTERM and expects exit 0 within the drain time.
# Loopback only. The server is killed and the temp dir removed on any exit.
#
# Environment: ROMED_E2E_START_S (default 60) bounds the wait for SERVING;
# ROMED_E2E_KEEP=1 keeps the temp dir (logs) for debugging.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ROMED ROMECTL ROMED_RANDOM_MODEL" >&2
  exit 2
fi
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3
readonly START_S=${ROMED_E2E_START_S:-60}
readonly DRAIN_S=5

WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-e2e.XXXXXX")
readonly WORK
SERVER_PID=""
SERVER=""
METRICS_PORT=0
METRICS_SKIPPED=""
FAILURES=0

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${ROMED_E2E_KEEP:-0}" == 1 || $FAILURES -gt 0 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
die() { echo "FATAL: $*" >&2; FAILURES=$((FAILURES + 1)); [[ -f $WORK/romed.log ]] && tail -20 "$WORK/romed.log" >&2; exit 1; }

# A TCP port on 127.0.0.1 that nothing answers on right now.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# rc=$(run_ctl OUT ERR args...): romectl against the server, stdout and stderr
# kept in files, exit status echoed (never aborts the script). Each RPC gets
# CTL_TIMEOUT_S seconds (default 60).
run_ctl() {
  local out=$1 err=$2
  shift 2
  local rc=0
  "$ROMECTL" --server="$SERVER" --timeout_s="${CTL_TIMEOUT_S:-60}" "$@" >"$out" 2>"$err" || rc=$?
  echo "$rc"
}

make_model() {
  "$RANDOM_MODEL" --config=gpt2 --n_layer=2 --n_embd=64 --n_head=2 --byte_level \
    --out="$WORK/model" --seed=1 >"$WORK/random_model.log" 2>&1 ||
    die "romed-random-model failed: $(tail -5 "$WORK/random_model.log")"
  pass "romed-random-model wrote a tiny checkpoint"
}

# Starts romed with metrics on METRICS_PORT (0 = disabled); sets SERVER to
# the gRPC address it logs. Fails (without dying) if romed exits first.
launch_server() {
  local port=""
  "$ROMED" --model="$WORK/model" --host=127.0.0.1 --port=0 --metrics_port="$METRICS_PORT" \
    --state_dir="$WORK/state" --threads=1 --drain_seconds="$DRAIN_S" \
    >"$WORK/romed.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/romed.log" 2>/dev/null | head -1)
    [[ -n "$port" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n "$port" ]]; then
    SERVER="127.0.0.1:$port"
    return 0
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  return 1
}

# Starts romed, retrying on another metrics port if that one could not be
# served; as a last resort without metrics (check_metrics then reports SKIP).
start_server() {
  local attempt
  for attempt in 1 2 3; do
    METRICS_PORT=$(free_port) || die "no free port for metrics"
    launch_server && return 0
    grep -qi "metrics" "$WORK/romed.log" || die "romed did not start: $(tail -5 "$WORK/romed.log")"
    echo "romed start attempt $attempt: $(tail -1 "$WORK/romed.log")" >&2
  done
  METRICS_SKIPPED="metrics could not be served: $(tail -1 "$WORK/romed.log")"
  METRICS_PORT=0
  launch_server || die "romed did not start: $(tail -5 "$WORK/romed.log")"
}

wait_until_serving() {
  local deadline=$((SECONDS + START_S))
  while ((SECONDS < deadline)); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited while loading"
    if [[ $(CTL_TIMEOUT_S=2 run_ctl "$WORK/health.out" "$WORK/health.err" health) == 0 ]] &&
       [[ $(cat "$WORK/health.out") == SERVING ]]; then
      pass "health is SERVING after $((SECONDS + START_S - deadline)) s"
      return 0
    fi
    sleep 0.5
  done
  die "romed not SERVING within $START_S s (last: $(cat "$WORK/health.out" "$WORK/health.err"))"
}

check_info() {
  local rc
  rc=$(run_ctl "$WORK/info.out" "$WORK/info.err" info)
  if [[ $rc == 0 ]] && grep -q "gpt2: 2 layers, d_model 64, 2 heads" "$WORK/info.out"; then
    pass "info describes the 2-layer model"
  else
    fail "info (rc $rc): $(cat "$WORK/info.out" "$WORK/info.err")"
  fi
  rc=$(run_ctl "$WORK/info.json" "$WORK/info.err" --json info)
  if [[ $rc == 0 ]] && grep -q '"n_layer":2' "$WORK/info.json" &&
     grep -q '"vocab_size":257' "$WORK/info.json"; then
    pass "info --json has n_layer 2 and vocab_size 257"
  else
    fail "info --json (rc $rc): $(cat "$WORK/info.json" "$WORK/info.err")"
  fi
}

check_tokenize() {
  local rc ids
  rc=$(run_ctl "$WORK/tok.json" "$WORK/tok.err" tokenize --text="Hello world" --json)
  # Byte-level vocabulary, no merges: one token per byte.
  ids=$(sed -n 's/^{"ids":\[\([0-9,]*\)\],"tokens":\[.*\]}$/\1/p' "$WORK/tok.json")
  if [[ $rc == 0 && $(tr ',' '\n' <<<"$ids" | grep -c .) == 11 ]]; then
    pass "tokenize --json gives 11 ids for 'Hello world'"
  else
    fail "tokenize --json (rc $rc): $(cat "$WORK/tok.json" "$WORK/tok.err")"
  fi
}

# Runs the same generate twice; both must succeed and print the same text.
check_reproducible() {
  local what=$1
  shift
  local rc1 rc2
  rc1=$(run_ctl "$WORK/gen1.out" "$WORK/gen1.err" generate "$@")
  rc2=$(run_ctl "$WORK/gen2.out" "$WORK/gen2.err" generate "$@")
  if [[ $rc1 == 0 && $rc2 == 0 ]] && cmp -s "$WORK/gen1.out" "$WORK/gen2.out" &&
     [[ -s "$WORK/gen1.out" ]]; then
    pass "$what: two runs print the same text"
  else
    fail "$what (rc $rc1/$rc2): $(cat "$WORK/gen1.out" "$WORK/gen1.err" "$WORK/gen2.out")"
  fi
}

check_generate() {
  check_reproducible "greedy generate" --prompt="The Eiffel Tower is in" --max_new_tokens=12
  cp "$WORK/gen1.out" "$WORK/greedy.out"
  check_reproducible "seeded sampling" --prompt="The Eiffel Tower is in" --max_new_tokens=12 \
    --temperature=1.0 --top_k=50 --top_p=0.95 --seed=7
  local rc
  rc=$(run_ctl "$WORK/stream.out" "$WORK/stream.err" generate \
    --prompt="The Eiffel Tower is in" --max_new_tokens=12 --stream)
  if [[ $rc == 0 ]] && cmp -s "$WORK/stream.out" "$WORK/greedy.out"; then
    pass "generate --stream prints the same text as greedy generate"
  else
    fail "generate --stream (rc $rc): '$(cat "$WORK/stream.out")' vs '$(cat "$WORK/greedy.out")' $(cat "$WORK/stream.err")"
  fi
  rc=$(run_ctl "$WORK/gen.json" "$WORK/gen.err" --json generate --prompt="Hi" --max_new_tokens=3 \
    --ignore_eos)
  if [[ $rc == 0 ]] && grep -q '"finish_reason":"length"' "$WORK/gen.json" &&
     [[ $(wc -l <"$WORK/gen.json") == 1 ]]; then
    pass "generate --json is one object with finish_reason length"
  else
    fail "generate --json (rc $rc): $(cat "$WORK/gen.json" "$WORK/gen.err")"
  fi
}

check_score() {
  local rc
  rc=$(run_ctl "$WORK/score.json" "$WORK/score.err" --json score --prompt="Hello" \
    --continuation=" world" --continuation=", there")
  if [[ $rc == 0 ]] && grep -q '"continuation":", there"' "$WORK/score.json" &&
     grep -q '"total_logprob":-' "$WORK/score.json"; then
    pass "score --json scores both continuations (one with a comma)"
  else
    fail "score --json (rc $rc): $(cat "$WORK/score.json" "$WORK/score.err")"
  fi
  rc=$(run_ctl "$WORK/score.out" "$WORK/score.err" score --prompt="Hello" --continuation=" world")
  if [[ $rc == 0 ]] && grep -q '^" world": total -' "$WORK/score.out"; then
    pass "score prints a table for people"
  else
    fail "score (rc $rc): $(cat "$WORK/score.out" "$WORK/score.err")"
  fi
}

# expect_rpc_error WHAT CODE romectl-args...: exit 1, "error: CODE: ..." on stderr.
expect_rpc_error() {
  local what=$1 code=$2
  shift 2
  local rc
  rc=$(run_ctl "$WORK/err.out" "$WORK/err.err" "$@")
  if [[ $rc == 1 ]] && grep -q "^error: $code: " "$WORK/err.err"; then
    pass "$what: exit 1 and $code"
  else
    fail "$what (rc $rc): $(cat "$WORK/err.out" "$WORK/err.err")"
  fi
}

check_errors() {
  local rc
  expect_rpc_error "empty prompt" INVALID_ARGUMENT generate --prompt=
  expect_rpc_error "empty continuation" INVALID_ARGUMENT score --prompt=x --continuation=
  expect_rpc_error "unknown session" NOT_FOUND generate --prompt=x --session=s-no-such-session
  rc=$(run_ctl "$WORK/err.out" "$WORK/err.err" generate --no_such_flag)
  if [[ $rc == 2 ]]; then pass "usage error: exit 2"; else fail "usage error: rc $rc"; fi
  rc=$(run_ctl "$WORK/health.out" "$WORK/health.err" health)
  if [[ $rc == 0 ]]; then pass "server still SERVING after bad input"; else fail "server unhealthy"; fi
}

check_metrics() {
  local body="$WORK/metrics.txt"
  if [[ -n "$METRICS_SKIPPED" ]]; then
    echo "SKIP: /metrics ($METRICS_SKIPPED)" >&2
    return
  fi
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" &&
        printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
        timeout 10 cat <&3 >"$body") 2>/dev/null; then
    fail "cannot GET /metrics on 127.0.0.1:$METRICS_PORT"
    return
  fi
  if grep -q "^romed_requests_total" "$body"; then
    pass "/metrics has romed_requests_total"
  else
    fail "/metrics lacks romed_requests_total: $(head -5 "$body")"
  fi
}

check_sigterm() {
  kill -TERM "$SERVER_PID"
  local deadline=$((SECONDS + DRAIN_S + 10)) rc=0
  while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "romed still running $((DRAIN_S + 10)) s after SIGTERM"
    return
  fi
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  if [[ $rc == 0 ]]; then pass "SIGTERM: romed drained and exited 0"; else fail "SIGTERM: exit $rc"; fi
  CTL_TIMEOUT_S=5 expect_rpc_error "health of a stopped server" UNAVAILABLE health
}

main() {
  make_model
  start_server
  wait_until_serving
  check_info
  check_tokenize
  check_generate
  check_score
  check_errors
  check_metrics
  check_sigterm
  if ((FAILURES > 0)); then
    echo "$FAILURES check(s) failed; romed log:" >&2
    cat "$WORK/romed.log" >&2
    exit 1
  fi
  echo "all end-to-end checks passed"
}

main
