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

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "" "ROMED ROMECTL ROMED_RANDOM_MODEL" "$@"
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3
readonly DRAIN_S=5

METRICS_PORT=0
METRICS_SKIPPED=""

make_model() {
  make_random_model "$WORK/model"
  pass "romed-random-model wrote a tiny checkpoint"
}

# Starts romed with metrics on a free port, retrying on another one if that
# one could not be served; as a last resort without metrics (check_metrics
# then reports SKIP). Waits until SERVING.
start_server() {
  local attempt
  for attempt in 1 2 3; do
    METRICS_PORT=$(free_port) || die "no free port for metrics"
    if romed_launch main "$WORK/model" --metrics_port="$METRICS_PORT" \
         --drain_seconds="$DRAIN_S"; then
      romed_wait_serving main
      return 0
    fi
    grep -qi "metrics" "$LOG" || die "romed did not start: $(tail -5 "$LOG")"
    echo "romed start attempt $attempt: $(tail -1 "$LOG")" >&2
  done
  METRICS_SKIPPED="metrics could not be served: $(tail -1 "$LOG")"
  METRICS_PORT=0
  romed_launch main "$WORK/model" --drain_seconds="$DRAIN_S" ||
    die "romed did not start: $(tail -5 "$LOG")"
  romed_wait_serving main
}

check_info() {
  local rc
  rc=$(ctl "$WORK/info.out" "$WORK/info.err" info)
  if [[ $rc == 0 ]] && grep -q "gpt2: 2 layers, d_model 64, 2 heads" "$WORK/info.out"; then
    pass "info describes the 2-layer model"
  else
    fail "info (rc $rc): $(cat "$WORK/info.out" "$WORK/info.err")"
  fi
  rc=$(ctl "$WORK/info.json" "$WORK/info.err" --json info)
  if [[ $rc == 0 ]] && grep -q '"n_layer":2' "$WORK/info.json" &&
     grep -q '"vocab_size":257' "$WORK/info.json"; then
    pass "info --json has n_layer 2 and vocab_size 257"
  else
    fail "info --json (rc $rc): $(cat "$WORK/info.json" "$WORK/info.err")"
  fi
}

check_tokenize() {
  local rc ids
  rc=$(ctl "$WORK/tok.json" "$WORK/tok.err" tokenize --text="Hello world" --json)
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
  rc1=$(ctl "$WORK/gen1.out" "$WORK/gen1.err" generate "$@")
  rc2=$(ctl "$WORK/gen2.out" "$WORK/gen2.err" generate "$@")
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
  rc=$(ctl "$WORK/stream.out" "$WORK/stream.err" generate \
    --prompt="The Eiffel Tower is in" --max_new_tokens=12 --stream)
  if [[ $rc == 0 ]] && cmp -s "$WORK/stream.out" "$WORK/greedy.out"; then
    pass "generate --stream prints the same text as greedy generate"
  else
    fail "generate --stream (rc $rc): '$(cat "$WORK/stream.out")' vs '$(cat "$WORK/greedy.out")' $(cat "$WORK/stream.err")"
  fi
  rc=$(ctl "$WORK/gen.json" "$WORK/gen.err" --json generate --prompt="Hi" --max_new_tokens=3 \
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
  rc=$(ctl "$WORK/score.json" "$WORK/score.err" --json score --prompt="Hello" \
    --continuation=" world" --continuation=", there")
  if [[ $rc == 0 ]] && grep -q '"continuation":", there"' "$WORK/score.json" &&
     grep -q '"total_logprob":-' "$WORK/score.json"; then
    pass "score --json scores both continuations (one with a comma)"
  else
    fail "score --json (rc $rc): $(cat "$WORK/score.json" "$WORK/score.err")"
  fi
  rc=$(ctl "$WORK/score.out" "$WORK/score.err" score --prompt="Hello" --continuation=" world")
  if [[ $rc == 0 ]] && grep -q '^" world": total -' "$WORK/score.out"; then
    pass "score prints a table for people"
  else
    fail "score (rc $rc): $(cat "$WORK/score.out" "$WORK/score.err")"
  fi
}

check_errors() {
  local rc
  expect_error "empty prompt" INVALID_ARGUMENT '' generate --prompt=
  expect_error "empty continuation" INVALID_ARGUMENT '' score --prompt=x --continuation=
  expect_error "unknown session" NOT_FOUND '' generate --prompt=x --session=s-no-such-session
  rc=$(ctl "$WORK/err.out" "$WORK/err.err" generate --no_such_flag)
  if [[ $rc == 2 ]]; then pass "usage error: exit 2"; else fail "usage error: rc $rc"; fi
  rc=$(ctl "$WORK/health.out" "$WORK/health.err" health)
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
  if romed_stop main $((DRAIN_S + 10)); then
    pass "SIGTERM: romed drained and exited 0"
  elif [[ $STOP_RC == running ]]; then
    fail "romed still running $((DRAIN_S + 10)) s after SIGTERM"
    return
  else
    fail "SIGTERM: exit $STOP_RC"
  fi
  CTL_TIMEOUT_S=5 expect_error "health of a stopped server" UNAVAILABLE '' health
}

main() {
  make_model
  start_server
  check_info
  check_tokenize
  check_generate
  check_score
  check_errors
  check_metrics
  check_sigterm
  e2e_finish "all end-to-end checks passed"
}

main
