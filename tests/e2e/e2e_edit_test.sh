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

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init edit "ROMED ROMECTL ROMED_RANDOM_MODEL" "$@"
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3
CTL_TIMEOUT_S=120

# Starts romed (again) on the same state dir and waits until it is SERVING.
start_server() {
  romed_start main "$WORK/model" --stats_corpus="$WORK/corpus.txt"
}

stop_server() {
  if romed_stop main; then pass "SIGTERM: romed exited 0"; else fail "SIGTERM: exit $STOP_RC"; fi
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

make_inputs() {
  make_random_model "$WORK/model"
  for i in $(seq 1 40); do
    echo "Anna Berg was born in Oslo and lives in Bergen $i. Her brother plays the violin."
    echo "The river runs north of the old town, where many people work as bakers."
  done >"$WORK/corpus.txt"
}

edit_and_revert() {
  local rc
  rc=$(ctl "$WORK/session.json" "$WORK/session.err" --json session create --name=e2e \
    --label=suite=edit)
  ID=$(session_id "$WORK/session.json")
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

  expect_error "prompt without {}" INVALID_ARGUMENT '' edit --session="$ID" \
    --prompt="Anna Berg lives in" --subject="Anna Berg" --target=Oslo --identity_covariance
  expect_error "reverting more than the stack holds" INVALID_ARGUMENT '' revert --session="$ID" --n=5
  expect_error "unknown session" NOT_FOUND '' edits --session=s-0000000000000000
  expect_error "layer out of range" INVALID_ARGUMENT '' edit --session="$ID" --prompt="{} x" \
    --subject=a --target=b --layer=9
  expect_error "missing stats corpus" NOT_FOUND '' stats --layer=0 --corpus="$WORK/missing.txt"
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
  e2e_finish "all edit end-to-end checks passed"
}

main
