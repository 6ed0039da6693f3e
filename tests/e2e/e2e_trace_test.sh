#!/usr/bin/env bash
# End-to-end causal tracing: a real romed on a tiny random checkpoint (with a
# small known_facts.json beside it, so the default noise is measured over
# subject-token embeddings), driven by `romectl trace`.
#
#   e2e_trace_test.sh ROMED ROMECTL ROMED_RANDOM_MODEL
#
# Checks: the terminal heatmaps and the SVG of one prompt, --json, bad input
# (exit 1 with the code; exit 2 for usage), a deadline that stops the
# server's work (the heavy-job slot is free right after), tracing a session,
# --facts=FILE and --facts=model --store_site, the stored edit site in
# `romectl info` and after a restart on the same state dir. Loopback only.
#
# Environment: ROMED_E2E_START_S (default 60) bounds the wait for SERVING;
# ROMED_E2E_KEEP=1 keeps the temp dir (logs, the SVG) for debugging.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ROMED ROMECTL ROMED_RANDOM_MODEL" >&2
  exit 2
fi
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3
readonly START_S=${ROMED_E2E_START_S:-60}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-e2e-trace.XXXXXX")
readonly WORK
SERVER_PID=""
SERVER=""
FAILURES=0

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

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

# rc=$(run_ctl OUT ERR args...): romectl against the server; stdout and
# stderr kept in files, exit status echoed (never aborts the script).
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
  cat >"$WORK/model/known_facts.json" <<'EOF'
[
  {"known_id": 0, "subject": "Dora Zope", "attribute": "Vienna", "template": "{} is from",
   "prediction": " V", "prompt": "Dora Zope is from", "relation_id": "P19"},
  {"known_id": 1, "subject": "Ann Lo", "attribute": "banjo", "template": "{} plays the",
   "prediction": " b", "prompt": "Ann Lo plays the", "relation_id": "P1303"},
  {"known_id": 2, "subject": "Bob Ka", "attribute": "Shell", "template": "{} works for",
   "prediction": " S", "prompt": "Bob Ka works for", "relation_id": "P108"}
]
EOF
  pass "a tiny checkpoint with three known facts"
}

start_server() {
  local port="" first_line
  touch "$WORK/romed.log"
  first_line=$(($(wc -l <"$WORK/romed.log") + 1))
  "$ROMED" --model="$WORK/model" --host=127.0.0.1 --port=0 --metrics_port=0 \
    --state_dir="$WORK/state" --threads=1 --drain_seconds=2 >>"$WORK/romed.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    port=$(tail -n +"$first_line" "$WORK/romed.log" |
      sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' | head -1)
    [[ -n "$port" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited: $(tail -5 "$WORK/romed.log")"
    sleep 0.1
  done
  [[ -n "$port" ]] || die "romed logged no port"
  SERVER="127.0.0.1:$port"
  local deadline=$((SECONDS + START_S))
  while ((SECONDS < deadline)); do
    if [[ $(CTL_TIMEOUT_S=2 run_ctl "$WORK/health.out" "$WORK/health.err" health) == 0 ]]; then
      return 0
    fi
    sleep 0.3
  done
  die "romed not SERVING within $START_S s"
}

check_trace_prompt() {
  local rc
  rc=$(run_ctl "$WORK/trace.out" "$WORK/trace.err" trace --prompt="Dora Zope is from" \
    --subject="Dora Zope" --samples=4 --svg="$WORK/trace.svg")
  if [[ $rc == 0 ]] && grep -q "^state restored (window 1)" "$WORK/trace.out" &&
     grep -q "^mlp restored" "$WORK/trace.out" && grep -q "^attn restored" "$WORK/trace.out" &&
     grep -q "^Z\* " "$WORK/trace.out" && grep -q "^f " "$WORK/trace.out" &&
     grep -q "subject-token embeddings" "$WORK/trace.out"; then
    pass "trace draws three heatmaps, subject tokens starred, subject-embedding noise"
  else
    fail "trace (rc $rc): $(cat "$WORK/trace.out" "$WORK/trace.err")"
  fi
  if grep -q "<svg" "$WORK/trace.svg" && grep -q "Restoring state after corrupted input" \
       "$WORK/trace.svg" && grep -q "Restoring attention after corrupted input" "$WORK/trace.svg"
  then
    pass "trace --svg writes the three panels"
  else
    fail "trace --svg: $(head -c 300 "$WORK/trace.svg" 2>&1)"
  fi
  if command -v rsvg-convert >/dev/null; then
    if rsvg-convert -o "$WORK/trace.png" "$WORK/trace.svg" 2>"$WORK/rsvg.err"; then
      pass "the SVG renders (rsvg-convert)"
    else
      fail "rsvg-convert: $(cat "$WORK/rsvg.err")"
    fi
  fi
  rc=$(run_ctl "$WORK/trace.json" "$WORK/trace.err" --json trace --prompt="Dora Zope is from" \
    --subject="Dora Zope" --samples=4 --kinds=state,mlp --noprogress)
  if [[ $rc == 0 && $(wc -l <"$WORK/trace.json") == 1 ]] &&
     grep -q '"noise_basis":"subject_embeddings"' "$WORK/trace.json" &&
     grep -q '"kind":"mlp"' "$WORK/trace.json" && ! grep -q '"kind":"attn"' "$WORK/trace.json"
  then
    pass "trace --json is one object with the kinds asked for"
  else
    fail "trace --json (rc $rc): $(cat "$WORK/trace.json" "$WORK/trace.err")"
  fi
}

# expect_error CODE MESSAGE_PART args...: romectl exits 1 printing that error.
expect_error() {
  local code=$1 part=$2 rc shown
  shift 2
  shown="$*"
  ((${#shown} <= 100)) || shown="${shown:0:60}...${shown: -30}"
  rc=$(run_ctl "$WORK/bad.out" "$WORK/bad.err" trace --noprogress "$@")
  if [[ $rc == 1 ]] && grep -q "error: $code: .*$part" "$WORK/bad.err"; then
    pass "trace $shown -> $code"
  else
    fail "trace $shown (rc $rc, want 1 $code '$part'): $(cat "$WORK/bad.err")"
  fi
}

check_bad_input() {
  local p=(--prompt="Dora Zope is from" --subject="Dora Zope")
  expect_error INVALID_ARGUMENT "does not occur in the prompt" --prompt="Ann is" --subject=Bob
  expect_error INVALID_ARGUMENT "covers the whole prompt" --prompt="Dora" --subject=Dora
  expect_error INVALID_ARGUMENT "prompt is empty" --prompt= --subject=Dora
  expect_error INVALID_ARGUMENT "window=0 is outside" "${p[@]}" --window=0
  expect_error INVALID_ARGUMENT "window=3 is outside" "${p[@]}" --window=3
  expect_error INVALID_ARGUMENT "samples=0 is outside" "${p[@]}" --samples=0
  expect_error INVALID_ARGUMENT "samples=65 is outside" "${p[@]}" --samples=65
  expect_error INVALID_ARGUMENT "noise_sigma=-1" "${p[@]}" --noise_sigma=-1
  expect_error NOT_FOUND "session \"s-0000000000000000\" not found" "${p[@]}" \
    --session=s-0000000000000000
  expect_error INVALID_ARGUMENT "max_prompt_tokens" --prompt="$(printf 'a%.0s' $(seq 1 1100)) Dora" \
    --subject=Dora
  local rc
  rc=$(run_ctl "$WORK/bad.out" "$WORK/bad.err" trace --prompt="Dora Zope is from")
  if [[ $rc == 2 ]] && grep -q "needs --prompt and --subject" "$WORK/bad.err"; then
    pass "trace without --subject is a usage error (exit 2)"
  else
    fail "trace without --subject (rc $rc): $(cat "$WORK/bad.err")"
  fi
}

# A TraceFacts run far longer than its deadline: DEADLINE_EXCEEDED, and the
# server stops (a trace right after gets the heavy-job slot, not
# RESOURCE_EXHAUSTED).
check_deadline() {
  {
    echo "["
    for i in $(seq 1 999); do echo '{"prompt": "Dora Zope is from", "subject": "Dora Zope"},'; done
    echo '{"prompt": "Dora Zope is from", "subject": "Dora Zope"}]'
  } >"$WORK/many.json"
  local rc
  rc=$(CTL_TIMEOUT_S=0.5 run_ctl "$WORK/slow.out" "$WORK/slow.err" trace \
    --facts="$WORK/many.json" --n=1000 --samples=8 --noprogress)
  if [[ $rc == 1 ]] && grep -q "DEADLINE_EXCEEDED" "$WORK/slow.err"; then
    pass "trace --facts past its deadline -> DEADLINE_EXCEEDED"
  else
    fail "deadline (rc $rc): $(cat "$WORK/slow.out" "$WORK/slow.err")"
  fi
  local ok=""
  for _ in $(seq 1 20); do
    rc=$(run_ctl "$WORK/after.out" "$WORK/after.err" trace --prompt="Dora Zope is from" \
      --subject="Dora Zope" --samples=2 --noprogress)
    if [[ $rc == 0 ]]; then ok=1; break; fi
    grep -q RESOURCE_EXHAUSTED "$WORK/after.err" || break
    sleep 0.1
  done
  if [[ -n "$ok" ]]; then
    pass "the server stopped the expired job (a new trace runs within 2 s)"
  else
    fail "after the deadline: $(cat "$WORK/after.err")"
  fi
}

check_session() {
  local rc id
  rc=$(run_ctl "$WORK/session.json" "$WORK/session.err" --json session create --name=trace)
  id=$(sed -n 's/.*"id":"\(s-[0-9a-f]*\)".*/\1/p' "$WORK/session.json")
  if [[ $rc != 0 || -z "$id" ]]; then
    fail "session create (rc $rc): $(cat "$WORK/session.json" "$WORK/session.err")"
    return
  fi
  rc=$(run_ctl "$WORK/strace.json" "$WORK/strace.err" --json trace --prompt="Dora Zope is from" \
    --subject="Dora Zope" --samples=2 --session="$id" --noprogress)
  if [[ $rc == 0 ]] && grep -q '"grids"' "$WORK/strace.json"; then
    pass "trace --session=$id (an empty stack traces the base model)"
  else
    fail "trace --session (rc $rc): $(cat "$WORK/strace.err")"
  fi
}

check_facts() {
  local rc
  cp "$WORK/model/known_facts.json" "$WORK/facts.json"
  rc=$(run_ctl "$WORK/facts.out" "$WORK/facts.err" trace --facts="$WORK/facts.json" --n=2 \
    --samples=2 --noprogress)
  if [[ $rc == 0 ]] && grep -q "^2 facts, mean clean p" "$WORK/facts.out" &&
     grep -q "^last token " "$WORK/facts.out" &&
     grep -q "recommended edit site: fact_token=" "$WORK/facts.out" &&
     grep -q "not stored" "$WORK/facts.out"; then
    pass "trace --facts=FILE --n=2 prints the averaged table and the site"
  else
    fail "trace --facts=FILE (rc $rc): $(cat "$WORK/facts.out" "$WORK/facts.err")"
  fi
  rc=$(run_ctl "$WORK/mfacts.out" "$WORK/mfacts.err" trace --facts=model --samples=2 --store_site)
  if [[ $rc == 0 ]] && grep -q "^3 facts" "$WORK/mfacts.out" &&
     grep -q "stored as the model's default edit site" "$WORK/mfacts.out" &&
     grep -q "3/3 facts" "$WORK/mfacts.err"; then
    pass "trace --facts=model --store_site traces the model's 3 facts with progress and stores"
  else
    fail "trace --facts=model (rc $rc): $(cat "$WORK/mfacts.out" "$WORK/mfacts.err")"
  fi
  SITE=$(sed -n 's/recommended edit site: \(fact_token=[a-z_]*, layer [0-9]*\).*/\1/p' \
    "$WORK/mfacts.out")
  rc=$(run_ctl "$WORK/info.out" "$WORK/info.err" info)
  if [[ $rc == 0 ]] && grep -q "^edit_site    $SITE" "$WORK/info.out"; then
    pass "info shows the stored edit site ($SITE)"
  else
    fail "info edit_site (rc $rc, want '$SITE'): $(cat "$WORK/info.out" "$WORK/info.err")"
  fi
}

check_site_survives_restart() {
  stop_server
  start_server
  local rc
  rc=$(run_ctl "$WORK/info2.out" "$WORK/info2.err" info)
  if [[ $rc == 0 ]] && grep -q "^edit_site    $SITE" "$WORK/info2.out"; then
    pass "the edit site survives a restart on the same state dir"
  else
    fail "after restart (rc $rc): $(cat "$WORK/info2.out" "$WORK/info2.err")"
  fi
}

make_model
start_server
pass "romed SERVING on $SERVER"
check_trace_prompt
check_bad_input
check_deadline
check_session
check_facts
check_site_survives_restart
stop_server

if ((FAILURES > 0)); then
  echo "$FAILURES check(s) failed" >&2
  exit 1
fi
echo "all trace e2e checks passed"
