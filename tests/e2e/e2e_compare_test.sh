#!/usr/bin/env bash
# End-to-end A/B comparison: a real romed on a tiny random checkpoint, one
# session with a ROME edit, driven by `romectl compare`.
#
#   e2e_compare_test.sh ROMED ROMECTL ROMED_RANDOM_MODEL
#
# Checks the two-column text, that --json's target log-probs equal `romectl
# score` on each variant (to 1e-5) and its generations equal `romectl
# generate` on each variant, top-k and KL, a == b, and the bad-input codes.
# Loopback only; the server is killed and the temp dir removed on any exit
# (ROMED_E2E_KEEP=1 keeps it).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init compare "ROMED ROMECTL ROMED_RANDOM_MODEL" "$@"
readonly ROMED=$1 ROMECTL=$2 RANDOM_MODEL=$3
readonly PROMPT="Anna Berg lives in"
CTL_TIMEOUT_S=120

# json_values FILE KEY: every number under "KEY": in FILE, one per line.
json_values() { grep -oE "\"$2\":-?[0-9.e+-]+" "$1" | sed 's/.*://'; }
# json_string FILE KEY: the first "KEY":"..." string (JSON-escaped) in FILE.
json_string() { grep -oE "\"$2\":\"([^\"\\\\]|\\\\.)*\"" "$1" | head -1 | sed "s/^\"$2\"://"; }

# near WHAT X Y: |X - Y| <= 1e-5.
near() {
  if awk -v x="$2" -v y="$3" 'BEGIN { d = x - y; if (d < 0) d = -d; exit !(d <= 1e-5) }'; then
    pass "$1 ($2 vs $3)"
  else
    fail "$1: $2 vs $3"
  fi
}

make_session() {
  make_random_model "$WORK/model"
  romed_start main "$WORK/model" --max_prompt_tokens=48 --max_continuations=8
  local rc
  rc=$(ctl "$WORK/session.json" "$WORK/session.err" --json session create --name=ab)
  ID=$(session_id "$WORK/session.json")
  [[ $rc == 0 && -n "$ID" ]] || die "session create (rc $rc): $(cat "$WORK/session.err")"
  rc=$(ctl "$WORK/edit.out" "$WORK/edit.err" edit --session="$ID" --prompt="{} lives in" \
    --subject="Anna Berg" --target=Oslo --layer=0 --fact_token=last --identity_covariance \
    --v_num_grad_steps=5)
  [[ $rc == 0 ]] || die "edit (rc $rc): $(cat "$WORK/edit.err")"
  pass "session $ID holds one edit"
}

text_for_people() {
  local rc
  rc=$(ctl "$WORK/text.out" "$WORK/text.err" compare --b="$ID" --prompt="$PROMPT" \
    --prompt="The river" --target=" Oslo" --top_k=3 --kl --color=never)
  [[ $rc == 0 ]] || fail "compare (rc $rc): $(cat "$WORK/text.err")"
  check "names variant a" "$WORK/text.out" '^a  original model$'
  check "names variant b" "$WORK/text.out" "^b  session $ID \\(1 delta\\)$"
  check "says what ran in one batch" "$WORK/text.out" \
    '^2 prompts; one batched decode of 4 rows \(targets scored from its prompt cache\); '
  check "has the column heads" "$WORK/text.out" '^ +a +b$'
  check "shows both generations" "$WORK/text.out" '^[* ] generation +".*" +".*"$'
  check "shows the target under both variants" "$WORK/text.out" \
    '^[* ] " Oslo" +p [0-9.]+  logp -?[0-9.]+ +p [0-9.]+  logp -?[0-9.]+$'
  check "shows three next tokens" "$WORK/text.out" '^[* ] top 3 '
  check "shows KL" "$WORK/text.out" '^[* ] KL\(a\|\|b\) +[0-9.e+-]+ nats$'
  check "marks the moved target with *" "$WORK/text.out" '^\* " Oslo"'
  if grep -q $'\x1b\\[' "$WORK/text.out"; then fail "--color=never wrote ANSI codes"; else
    pass "--color=never writes no ANSI codes"; fi
  rc=$(ctl "$WORK/color.out" "$WORK/color.err" compare --b="$ID" --prompt="$PROMPT" \
    --target=" Oslo" --color=always)
  if grep -q $'\x1b\\[1;32m' "$WORK/color.out"; then pass "--color=always highlights b"; else
    fail "--color=always: no highlight in $(cat "$WORK/color.out")"; fi
}

json_equals_score_and_generate() {
  local rc
  rc=$(ctl "$WORK/cmp.json" "$WORK/cmp.err" --json compare --b="$ID" --prompt="$PROMPT" \
    --target=" Oslo" --target=" Rome" --max_new_tokens=6 --ignore_eos)
  [[ $rc == 0 ]] || fail "compare --json (rc $rc): $(cat "$WORK/cmp.err")"
  mapfile -t got < <(json_values "$WORK/cmp.json" total_logprob)
  for variant in a b; do
    local session=""
    [[ $variant == b ]] && session=$ID
    rc=$(ctl "$WORK/score_$variant.json" "$WORK/score.err" --json score --prompt="$PROMPT" \
      --continuation=" Oslo" --continuation=" Rome" ${session:+--session="$session"})
    [[ $rc == 0 ]] || fail "score $variant (rc $rc): $(cat "$WORK/score.err")"
    mapfile -t want < <(json_values "$WORK/score_$variant.json" total_logprob)
    local offset=0
    [[ $variant == b ]] && offset=2
    near "variant $variant: log p(\" Oslo\") equals score" "${got[$offset]}" "${want[0]}"
    near "variant $variant: log p(\" Rome\") equals score" "${got[$((offset + 1))]}" "${want[1]}"
    rc=$(ctl "$WORK/gen_$variant.json" "$WORK/gen.err" --json generate --prompt="$PROMPT" \
      --max_new_tokens=6 --ignore_eos ${session:+--session="$session"})
    [[ $rc == 0 ]] || fail "generate $variant (rc $rc): $(cat "$WORK/gen.err")"
    if [[ "$(json_string "$WORK/cmp.json" "generation_$variant")" == \
      "$(json_string "$WORK/gen_$variant.json" text)" ]]; then
      pass "variant $variant: the generation equals generate"
    else
      fail "variant $variant: $(json_string "$WORK/cmp.json" "generation_$variant") vs" \
        "$(json_string "$WORK/gen_$variant.json" text)"
    fi
  done
  [[ "${got[0]}" != "${got[2]}" ]] && pass "the edit moved log p(\" Oslo\")" ||
    fail "the edit did not move log p(\" Oslo\")"
}

same_variant_and_bad_input() {
  local rc
  rc=$(ctl "$WORK/same.json" "$WORK/same.err" --json compare --a="$ID" --b="$ID" \
    --prompt="$PROMPT" --kl --max_new_tokens=0)
  [[ $rc == 0 ]] || fail "a == b (rc $rc): $(cat "$WORK/same.err")"
  check "a == b is allowed and runs once" "$WORK/same.json" '"scoring_rows":1[,}]'
  check "a == b: KL is 0" "$WORK/same.json" '"kl":0(\.0)?[,}]'

  expect_error "unknown session" NOT_FOUND 'variant b: session "s-0000000000000000" not found' \
    compare --b=s-0000000000000000 --prompt="$PROMPT"
  local many=()
  for i in $(seq 1 9); do many+=(--prompt="p$i"); done
  expect_error "too many prompts" INVALID_ARGUMENT '9 prompts; at most 8' compare "${many[@]}"
  expect_error "prompts x targets past the limit" INVALID_ARGUMENT '3 prompts x 3 targets' \
    compare --prompt=a --prompt=b --prompt=c --target=" x" --target=" y" --target=" z"
  expect_error "an empty prompt" INVALID_ARGUMENT 'prompts\[1\] is empty' compare --prompt=a \
    --prompt=
  expect_error "a prompt past --max_prompt_tokens" INVALID_ARGUMENT \
    'prompts\[0\]: prompt is 60 tokens; the limit is 48' compare --prompt="$(printf 'x%.0s' $(seq 1 60))"
  expect_error "nothing to compare" INVALID_ARGUMENT 'nothing to compare' compare --prompt=a \
    --max_new_tokens=0
  rc=$(ctl "$WORK/usage.out" "$WORK/usage.err" compare --b="$ID")
  [[ $rc == 2 ]] && pass "no --prompt is a usage error (exit 2)" || fail "no --prompt: rc $rc"
}

main() {
  make_session
  text_for_people
  json_equals_score_and_generate
  same_variant_and_bad_input
  e2e_finish "all compare end-to-end checks passed"
}

main
