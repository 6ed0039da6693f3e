#!/usr/bin/env bash
# End-to-end sessions and editing: a real romed on a tiny random checkpoint
# with a temporary --state_dir, driven by romectl.
#
#   e2e_edit_test.sh ROMED ROMECTL ROMED_RANDOM_MODEL
#
# Creates a session, computes statistics (progress bar), edits twice (with
# statistics and with C = I), checks that the session's scores moved and the
# base model's did not, lists the stack, reverts one edit exactly, checks the
# bad-input codes, restarts romed on the same state dir and checks that the
# session survived with identical outputs, then reverts everything (outputs
# equal the base model's). Loopback only; the server is killed and the temp
# dir removed on any exit (ROMED_E2E_KEEP=1 keeps it).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ROMED ROMECTL ROMED_RANDOM_MODEL" >&2
  exit 2
fi
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3
readonly START_S=${ROMED_E2E_START_S:-60}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-e2e-edit.XXXXXX")
readonly WORK
SERVER_PID=""
SERVER=""
FAILURES=0
LOG="$WORK/romed.log"  # the current server's log (one per start)
STARTS=0

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
die() {
  echo "FATAL: $*" >&2
  FAILURES=$((FAILURES + 1))
  [[ -f $LOG ]] && tail -20 "$LOG" >&2
  exit 1
}

# rc=$(ctl OUT ERR args...): romectl against the server; never aborts.
ctl() {
  local out=$1 err=$2
  shift 2
  local rc=0
  "$ROMECTL" --server="$SERVER" --timeout_s=120 "$@" >"$out" 2>"$err" || rc=$?
  echo "$rc"
}

# check WHAT FILE PATTERN: FILE contains the (grep -E) PATTERN.
check() {
  if grep -qE -- "$3" "$2"; then pass "$1"; else fail "$1: '$3' not in $(cat "$2")"; fi
}

start_server() {
  local port=""
  STARTS=$((STARTS + 1))
  LOG="$WORK/romed.$STARTS.log"
  "$ROMED" --model="$WORK/model" --host=127.0.0.1 --port=0 --metrics_port=0 \
    --state_dir="$WORK/state" --stats_corpus="$WORK/corpus.txt" --threads=1 --drain_seconds=5 \
    >"$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$LOG" | head -1)
    [[ -n "$port" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited: $(tail -5 "$LOG")"
    sleep 0.1
  done
  [[ -n "$port" ]] || die "romed logged no port"
  SERVER="127.0.0.1:$port"
  local deadline=$((SECONDS + START_S))
  while ((SECONDS < deadline)); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited while loading"
    if [[ $(ctl "$WORK/health.out" "$WORK/health.err" health) == 0 ]]; then
      pass "romed SERVING on $SERVER"
      return 0
    fi
    sleep 0.3
  done
  die "romed not SERVING within $START_S s"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  if [[ $rc == 0 ]]; then pass "SIGTERM: romed exited 0"; else fail "SIGTERM: exit $rc"; fi
}

# score FILE [SESSION]: the --json scores of two continuations.
score() {
  local rc
  rc=$(ctl "$1" "$WORK/score.err" --json score --prompt="Anna Berg lives in" \
    --continuation=" Oslo" --continuation=" Rome" ${2:+--session="$2"})
  [[ $rc == 0 ]] || fail "score (rc $rc): $(cat "$WORK/score.err")"
}

# same WHAT A B / differ WHAT A B: compare two outputs byte for byte.
same() { if cmp -s "$2" "$3"; then pass "$1"; else fail "$1: $(cat "$2") vs $(cat "$3")"; fi; }
differ() { if cmp -s "$2" "$3"; then fail "$1: both $(cat "$2")"; else pass "$1"; fi; }

# expect_error WHAT CODE args...: exit 1 and "error: CODE:" on stderr.
expect_error() {
  local what=$1 code=$2 rc
  shift 2
  rc=$(ctl "$WORK/err.out" "$WORK/err.err" "$@")
  if [[ $rc == 1 ]] && grep -q "^error: $code: " "$WORK/err.err"; then
    pass "$what: exit 1 and $code"
  else
    fail "$what (rc $rc): $(cat "$WORK/err.out" "$WORK/err.err")"
  fi
}

make_inputs() {
  "$RANDOM_MODEL" --config=gpt2 --n_layer=2 --n_embd=64 --n_head=2 --byte_level \
    --out="$WORK/model" --seed=1 >"$WORK/random_model.log" 2>&1 ||
    die "romed-random-model failed: $(tail -5 "$WORK/random_model.log")"
  for i in $(seq 1 40); do
    echo "Anna Berg was born in Oslo and lives in Bergen $i. Her brother plays the violin."
    echo "The river runs north of the old town, where many people work as bakers."
  done >"$WORK/corpus.txt"
}

edit_and_revert() {
  local rc
  rc=$(ctl "$WORK/session.json" "$WORK/session.err" --json session create --name=e2e \
    --label=suite=edit)
  ID=$(sed -n 's/.*"id":"\(s-[0-9a-f]*\)".*/\1/p' "$WORK/session.json")
  [[ $rc == 0 && -n "$ID" ]] || die "session create (rc $rc): $(cat "$WORK/session.json" "$WORK/session.err")"
  pass "session create --json gave $ID"
  score "$WORK/base.json"
  score "$WORK/empty.json" "$ID"
  same "an empty session scores like the base model" "$WORK/base.json" "$WORK/empty.json"

  rc=$(ctl "$WORK/stats.out" "$WORK/stats.err" stats --layer=1)
  [[ $rc == 0 ]] || fail "stats (rc $rc): $(cat "$WORK/stats.err")"
  check "stats draws a progress bar on stderr" "$WORK/stats.err" '\[#+\] 100%'
  check "stats prints the result" "$WORK/stats.out" '^statistics at layer 1: [0-9]+ tokens of .*corpus.txt, computed'

  rc=$(ctl "$WORK/edit1.out" "$WORK/edit1.err" edit --session="$ID" --prompt="{} lives in" \
    --subject="Anna Berg" --target=Oslo --target_true=Rome --layer=1 --v_num_grad_steps=5)
  [[ $rc == 0 ]] || fail "edit 1 (rc $rc): $(cat "$WORK/edit1.err")"
  check "edit 1 prints its id and site" "$WORK/edit1.out" '^edit 1 .*site: layer: request, fact_token: default'
  check "edit 1 used the statistics computed before" "$WORK/edit1.out" 'C +corpus .*corpus.txt'
  score "$WORK/after1.json" "$ID"
  differ "the session's scores moved after edit 1" "$WORK/base.json" "$WORK/after1.json"

  rc=$(ctl "$WORK/edit2.json" "$WORK/edit2.err" --json edit --session="$ID" \
    --prompt="{} plays the" --subject="Anna Berg" --target=piano --layer=0 \
    --fact_token=last --identity_covariance --v_num_grad_steps=5)
  [[ $rc == 0 ]] || fail "edit 2 (rc $rc): $(cat "$WORK/edit2.err")"
  check "edit 2 --json says C = I" "$WORK/edit2.json" '"identity_covariance":true'
  check "edit 2 --json has edit_id 2" "$WORK/edit2.json" '"edit_id":2'
  score "$WORK/after2.json" "$ID"
  score "$WORK/base_again.json"
  same "the base model is untouched" "$WORK/base.json" "$WORK/base_again.json"

  rc=$(ctl "$WORK/edits.out" "$WORK/edits.err" edits --session="$ID")
  check "edits lists both entries" "$WORK/edits.out" '^edit 2 '
  rc=$(ctl "$WORK/revert.out" "$WORK/revert.err" revert --session="$ID")
  check "revert pops edit 2" "$WORK/revert.out" "^reverted edit 2; session $ID: 1 edit"
  score "$WORK/reverted.json" "$ID"
  same "revert restores the scores after edit 1 exactly" "$WORK/after1.json" "$WORK/reverted.json"

  expect_error "prompt without {}" INVALID_ARGUMENT edit --session="$ID" \
    --prompt="Anna Berg lives in" --subject="Anna Berg" --target=Oslo --identity_covariance
  expect_error "reverting more than the stack holds" INVALID_ARGUMENT revert --session="$ID" --n=5
  expect_error "unknown session" NOT_FOUND edits --session=s-0000000000000000
  expect_error "layer out of range" INVALID_ARGUMENT edit --session="$ID" --prompt="{} x" \
    --subject=a --target=b --layer=9
  expect_error "missing stats corpus" NOT_FOUND stats --layer=0 --corpus="$WORK/missing.txt"
}

after_restart() {
  local rc
  rc=$(ctl "$WORK/get.out" "$WORK/get.err" session get "$ID")
  check "the session survived the restart" "$WORK/get.out" '^edits +1 edit \(top: 1\)'
  check "its name and labels too" "$WORK/get.out" '^labels +suite=edit'
  score "$WORK/restored.json" "$ID"
  same "restored session scores exactly as before the restart" "$WORK/after1.json" \
    "$WORK/restored.json"
  rc=$(ctl "$WORK/list.out" "$WORK/list.err" session list)
  check "session list shows it" "$WORK/list.out" "^$ID +1 "
  rc=$(ctl "$WORK/revert0.out" "$WORK/revert0.err" revert --session="$ID" --to=0)
  check "revert --to=0 removes the rest" "$WORK/revert0.out" "^reverted edit 1; session $ID: no edits"
  score "$WORK/final.json" "$ID"
  same "a fully reverted session scores like the base model" "$WORK/base.json" "$WORK/final.json"
  rc=$(ctl "$WORK/delete.out" "$WORK/delete.err" session delete "$ID")
  check "session delete" "$WORK/delete.out" "^deleted session $ID"
}

main() {
  make_inputs
  start_server
  edit_and_revert
  stop_server
  start_server
  after_restart
  stop_server
  if ((FAILURES > 0)); then
    echo "$FAILURES check(s) failed; romed logs:" >&2
    cat "$WORK"/romed.*.log >&2
    exit 1
  fi
  echo "all edit end-to-end checks passed"
}

main
