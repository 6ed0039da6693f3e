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

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init trace "ROMED ROMECTL ROMED_RANDOM_MODEL" "$@"
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3

make_model() {
  make_random_model "$WORK/model"
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

# Starts romed (again) on the same state dir and waits until it is SERVING.
start_server() { romed_start main "$WORK/model" --drain_seconds=2; }
stop_server() { romed_stop main || true; }

check_trace_prompt() {
  local rc
  rc=$(ctl "$WORK/trace.out" "$WORK/trace.err" trace --prompt="Dora Zope is from" \
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
  rc=$(ctl "$WORK/trace.json" "$WORK/trace.err" --json trace --prompt="Dora Zope is from" \
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

# expect_trace_error CODE MESSAGE_PART args...: `romectl trace --noprogress
# args...` exits 1 printing that error (MESSAGE_PART: a grep -E pattern).
expect_trace_error() {
  local code=$1 part=$2 shown
  shift 2
  shown="$*"
  ((${#shown} <= 100)) || shown="${shown:0:60}...${shown: -30}"
  expect_error "trace $shown" "$code" "$part" trace --noprogress "$@"
}

check_bad_input() {
  local p=(--prompt="Dora Zope is from" --subject="Dora Zope")
  expect_trace_error INVALID_ARGUMENT "does not occur in the prompt" --prompt="Ann is" --subject=Bob
  expect_trace_error INVALID_ARGUMENT "covers the whole prompt" --prompt="Dora" --subject=Dora
  expect_trace_error INVALID_ARGUMENT "prompt is empty" --prompt= --subject=Dora
  expect_trace_error INVALID_ARGUMENT "window=0 is outside" "${p[@]}" --window=0
  expect_trace_error INVALID_ARGUMENT "window=3 is outside" "${p[@]}" --window=3
  expect_trace_error INVALID_ARGUMENT "samples=0 is outside" "${p[@]}" --samples=0
  expect_trace_error INVALID_ARGUMENT "samples=65 is outside" "${p[@]}" --samples=65
  expect_trace_error INVALID_ARGUMENT "noise_sigma=-1" "${p[@]}" --noise_sigma=-1
  expect_trace_error NOT_FOUND "session \"s-0000000000000000\" not found" "${p[@]}" \
    --session=s-0000000000000000
  expect_trace_error INVALID_ARGUMENT "max_prompt_tokens" --prompt="$(printf 'a%.0s' $(seq 1 1100)) Dora" \
    --subject=Dora
  local rc
  rc=$(ctl "$WORK/bad.out" "$WORK/bad.err" trace --prompt="Dora Zope is from")
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
    for _ in $(seq 1 999); do echo '{"prompt": "Dora Zope is from", "subject": "Dora Zope"},'; done
    echo '{"prompt": "Dora Zope is from", "subject": "Dora Zope"}]'
  } >"$WORK/many.json"
  local rc
  rc=$(CTL_TIMEOUT_S=0.5 ctl "$WORK/slow.out" "$WORK/slow.err" trace \
    --facts="$WORK/many.json" --n=1000 --samples=8 --noprogress)
  if [[ $rc == 1 ]] && grep -q "DEADLINE_EXCEEDED" "$WORK/slow.err"; then
    pass "trace --facts past its deadline -> DEADLINE_EXCEEDED"
  else
    fail "deadline (rc $rc): $(cat "$WORK/slow.out" "$WORK/slow.err")"
  fi
  local ok=""
  for _ in $(seq 1 20); do
    rc=$(ctl "$WORK/after.out" "$WORK/after.err" trace --prompt="Dora Zope is from" \
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
  rc=$(ctl "$WORK/session.json" "$WORK/session.err" --json session create --name=trace)
  id=$(session_id "$WORK/session.json")
  if [[ $rc != 0 || -z "$id" ]]; then
    fail "session create (rc $rc): $(cat "$WORK/session.json" "$WORK/session.err")"
    return
  fi
  rc=$(ctl "$WORK/strace.json" "$WORK/strace.err" --json trace --prompt="Dora Zope is from" \
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
  rc=$(ctl "$WORK/facts.out" "$WORK/facts.err" trace --facts="$WORK/facts.json" --n=2 \
    --samples=2 --noprogress)
  if [[ $rc == 0 ]] && grep -q "^2 facts, mean clean p" "$WORK/facts.out" &&
     grep -q "^last token " "$WORK/facts.out" &&
     grep -q "recommended edit site: fact_token=" "$WORK/facts.out" &&
     grep -q "not stored" "$WORK/facts.out"; then
    pass "trace --facts=FILE --n=2 prints the averaged table and the site"
  else
    fail "trace --facts=FILE (rc $rc): $(cat "$WORK/facts.out" "$WORK/facts.err")"
  fi
  rc=$(ctl "$WORK/mfacts.out" "$WORK/mfacts.err" trace --facts=model --samples=2 --store_site)
  if [[ $rc == 0 ]] && grep -q "^3 facts" "$WORK/mfacts.out" &&
     grep -q "stored as the model's default edit site" "$WORK/mfacts.out" &&
     grep -q "3/3 facts" "$WORK/mfacts.err"; then
    pass "trace --facts=model --store_site traces the model's 3 facts with progress and stores"
  else
    fail "trace --facts=model (rc $rc): $(cat "$WORK/mfacts.out" "$WORK/mfacts.err")"
  fi
  SITE=$(sed -n 's/recommended edit site: \(fact_token=[a-z_]*, layer [0-9]*\).*/\1/p' \
    "$WORK/mfacts.out")
  rc=$(ctl "$WORK/info.out" "$WORK/info.err" info)
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
  rc=$(ctl "$WORK/info2.out" "$WORK/info2.err" info)
  if [[ $rc == 0 ]] && grep -q "^edit_site    $SITE" "$WORK/info2.out"; then
    pass "the edit site survives a restart on the same state dir"
  else
    fail "after restart (rc $rc): $(cat "$WORK/info2.out" "$WORK/info2.err")"
  fi
}

make_model
start_server
check_trace_prompt
check_bad_input
check_deadline
check_session
check_facts
check_site_survives_restart
stop_server
e2e_finish "all trace e2e checks passed"
