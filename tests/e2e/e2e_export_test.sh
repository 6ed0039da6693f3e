#!/usr/bin/env bash
# End-to-end export and import: real romed servers on a quick fact model,
# driven by romectl.
#
#   e2e_export_test.sh ROMED ROMECTL ROMED_FACT_MODEL ROMED_RANDOM_MODEL
#
# Edits a fact in a session on server A, exports the session to a file,
# imports it on server B (another process and state dir, same model) and
# checks that Score and greedy Generate are byte-identical; restarts B and
# checks the imported session survived. Writes the merged checkpoint with
# export-model, serves it as a base model on server C and checks its scores
# equal the session's to 1e-4. Bad input: an existing path without
# --overwrite, a corrupt file, a file on another base model (both checksums
# named), an unknown session. Loopback only; servers are killed and the temp
# dir removed on exit (ROMED_E2E_KEEP=1 keeps it).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init export "ROMED ROMECTL ROMED_FACT_MODEL ROMED_RANDOM_MODEL" "$@"
readonly ROMED=$1 ROMECTL=$2 FACT_MODEL=$3 RANDOM_MODEL=$4
CTL_TIMEOUT_S=300

# start NAME MODEL_DIR: starts romed NAME (state dir $WORK/state-NAME); sets
# ${NAME}_ADDR, ${NAME}_PID and SERVER (romectl's server) to it.
start() { romed_start "$1" "$2" --drain_seconds=1; }
# outputs ADDR FILE [SESSION]: --json Score and greedy Generate of the fact's prompt.
outputs() {
  local SERVER=$1
  must --json score --prompt="$PROMPT" --continuation=" $TARGET" --continuation="$ANSWER" \
    ${3:+--session="$3"}
  cp "$WORK/out" "$2.score"
  must --json generate --prompt="$PROMPT" --max_new_tokens=6 ${3:+--session="$3"}
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ids"], d["text"])' \
    "$WORK/out" >"$2.generate"
}

make_fact_model "$WORK/model"
make_random_model "$WORK/other"
# The first CounterFact case of the model: "{} ..." [subject] -> target_new (was target_true).
eval "$(python3 - "$WORK/model/counterfact.json" <<'PY'
import json, shlex, sys
r = json.load(open(sys.argv[1]))[0]["requested_rewrite"]
print("TEMPLATE=" + shlex.quote(r["prompt"]))
print("SUBJECT=" + shlex.quote(r["subject"]))
print("PROMPT=" + shlex.quote(r["prompt"].replace("{}", r["subject"])))
print("TARGET=" + shlex.quote(r["target_new"]["str"].strip()))
print("ANSWER=" + shlex.quote(" " + r["target_true"]["str"].strip()))
PY
)" || die "no CounterFact case in the model"
[[ -n "${TEMPLATE:-}" ]] || die "no CounterFact case in the model"

start A "$WORK/model"
start B "$WORK/model"
SERVER=$A_ADDR must --json session create --name=source
SOURCE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/out")
SERVER=$A_ADDR must edit --session="$SOURCE" --prompt="$TEMPLATE" --subject="$SUBJECT" \
  --target="$TARGET" --layer=1 --fact_token=last --identity_covariance
outputs "$A_ADDR" "$WORK/source" "$SOURCE"
outputs "$A_ADDR" "$WORK/base"
if cmp -s "$WORK/source.score" "$WORK/base.score"; then fail "the edit changed nothing"; else pass "the edit moved the scores"; fi

SERVER=$A_ADDR must export --session="$SOURCE" --out="$WORK/session.safetensors"
grep -q "exported session $SOURCE: 1 edits" "$WORK/out" && pass "export" || fail "export: $(cat "$WORK/out")"
SERVER=$A_ADDR expect_error "export onto an existing file" FAILED_PRECONDITION '' export \
  --session="$SOURCE" --out="$WORK/session.safetensors"
[[ $(SERVER=$A_ADDR ctl "$WORK/out" "$WORK/err" export --session="$SOURCE" \
  --out="$WORK/session.safetensors" --overwrite) == 0 ]] &&
  pass "export --overwrite" || fail "export --overwrite: $(cat "$WORK/err")"

SERVER=$B_ADDR must --json import --file="$WORK/session.safetensors"
IMPORTED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"]["id"])' "$WORK/out")
outputs "$B_ADDR" "$WORK/imported" "$IMPORTED"
cmp -s "$WORK/source.score" "$WORK/imported.score" && pass "imported Score is byte-identical" ||
  fail "imported Score differs: $(cat "$WORK/source.score" "$WORK/imported.score")"
cmp -s "$WORK/source.generate" "$WORK/imported.generate" && pass "imported Generate is identical" ||
  fail "imported Generate differs"
SERVER=$B_ADDR must edits --session="$IMPORTED"
grep -q "$TARGET" "$WORK/out" && pass "ListEdits shows the imported record" || fail "edits: $(cat "$WORK/out")"

romed_stop B || true
start B "$WORK/model"
outputs "$B_ADDR" "$WORK/restarted" "$IMPORTED"
cmp -s "$WORK/source.score" "$WORK/restarted.score" && pass "the import survived a restart" ||
  fail "after restart: $(cat "$WORK/restarted.score")"

head -c 100 "$WORK/session.safetensors" >"$WORK/truncated.safetensors"
SERVER=$B_ADDR expect_error "truncated file" INVALID_ARGUMENT '' import --file="$WORK/truncated.safetensors"
SERVER=$A_ADDR expect_error "unknown session" NOT_FOUND '' export --session=s-0000000000000000 --out="$WORK/x"
SERVER=$B_ADDR expect_error "import into a session with edits" FAILED_PRECONDITION '' import \
  --file="$WORK/session.safetensors" --session="$IMPORTED"

SERVER=$A_ADDR must export-model --session="$SOURCE" --out="$WORK/merged"
grep -q "serve it: romed --model=$WORK/merged" "$WORK/out" && pass "export-model" || fail "export-model: $(cat "$WORK/out")"
SERVER=$A_ADDR expect_error "export-model onto an existing dir" FAILED_PRECONDITION '' export-model \
  --session="$SOURCE" --out="$WORK/merged"
grep -q -- "--overwrite" "$WORK/err" && pass "the message says --overwrite" || fail "$(cat "$WORK/err")"

start C "$WORK/merged"
outputs "$C_ADDR" "$WORK/merged"
python3 - "$WORK/source.score" "$WORK/merged.score" <<'PY' && pass "merged checkpoint scores equal the session's to 1e-4" || fail "merged checkpoint differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
diff = max(abs(x - y) for sa, sb in zip(a["scores"], b["scores"])
           for x, y in zip(sa["token_logprobs"], sb["token_logprobs"]))
print("max |logprob(session) - logprob(merged)| =", diff)
sys.exit(0 if diff < 1e-4 else 1)
PY
cmp -s "$WORK/source.generate" "$WORK/merged.generate" && pass "merged greedy Generate equals the session's" ||
  fail "merged Generate differs"
checksum() {
  SERVER=$1 must --json info
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checksum"])' "$WORK/out"
}
A_SUM=$(checksum "$A_ADDR")
C_SUM=$(checksum "$C_ADDR")
[[ -n "$A_SUM" && "$A_SUM" != "$C_SUM" ]] && pass "the merged model has its own checksum" || fail "checksums $A_SUM / $C_SUM"

start D "$WORK/other"
D_SUM=$(checksum "$D_ADDR")
SERVER=$D_ADDR expect_error "import on another base model" FAILED_PRECONDITION '' import --file="$WORK/session.safetensors"
grep -q "$A_SUM" "$WORK/err" && grep -q "$D_SUM" "$WORK/err" && pass "the message names both checksums" ||
  fail "another model: $(cat "$WORK/err")"

e2e_finish "all export/import checks passed"
