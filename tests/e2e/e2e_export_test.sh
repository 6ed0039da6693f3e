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

if [[ $# -ne 4 ]]; then
  echo "usage: $0 ROMED ROMECTL ROMED_FACT_MODEL ROMED_RANDOM_MODEL" >&2
  exit 2
fi
readonly ROMED=$1 ROMECTL=$2 FACT_MODEL=$3 RANDOM_MODEL=$4

WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-e2e-export.XXXXXX")
readonly WORK
PIDS=()
FAILURES=0

cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ "${ROMED_E2E_KEEP:-0}" == 1 || $FAILURES -gt 0 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
die() { echo "FATAL: $*" >&2; FAILURES=$((FAILURES + 1)); exit 1; }

# start NAME MODEL_DIR: starts romed; sets ${NAME}_ADDR and ${NAME}_PID.
start() {
  local name=$1 model=$2 log="$WORK/$1.log" port=""
  "$ROMED" --model="$model" --host=127.0.0.1 --port=0 --metrics_port=0 \
    --state_dir="$WORK/state-$name" --threads=1 --drain_seconds=1 >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || die "romed $name exited: $(tail -5 "$log")"
    sleep 0.1
  done
  [[ -n "$port" ]] || die "romed $name logged no port"
  for _ in $(seq 1 300); do
    if "$ROMECTL" --server="127.0.0.1:$port" health >/dev/null 2>&1; then
      printf -v "${name}_ADDR" '%s' "127.0.0.1:$port"
      printf -v "${name}_PID" '%s' "$pid"
      pass "romed $name SERVING on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  die "romed $name not SERVING"
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

# ctl ADDR args...: romectl against ADDR; output in $WORK/out, $WORK/err; prints rc.
ctl() {
  local addr=$1 rc=0
  shift
  "$ROMECTL" --server="$addr" --timeout_s=300 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  echo "$rc"
}
must() { local rc; rc=$(ctl "$@"); [[ $rc == 0 ]] || die "romectl $* (rc $rc): $(cat "$WORK/err")"; }
# expect_error WHAT CODE ADDR args...: exit 1 and "error: CODE:" on stderr.
expect_error() {
  local what=$1 code=$2 rc
  shift 2
  rc=$(ctl "$@")
  if [[ $rc == 1 ]] && grep -q "^error: $code: " "$WORK/err"; then
    pass "$what: $code"
  else
    fail "$what (rc $rc): $(cat "$WORK/out" "$WORK/err")"
  fi
}
# outputs ADDR FILE [SESSION]: --json Score and greedy Generate of the fact's prompt.
outputs() {
  must "$1" --json score --prompt="$PROMPT" --continuation=" $TARGET" --continuation="$ANSWER" \
    ${3:+--session="$3"}
  cp "$WORK/out" "$2.score"
  must "$1" --json generate --prompt="$PROMPT" --max_new_tokens=6 ${3:+--session="$3"}
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ids"], d["text"])' \
    "$WORK/out" >"$2.generate"
}

"$FACT_MODEL" --out="$WORK/model" --quick >"$WORK/fact_model.log" 2>&1 ||
  die "romed-fact-model failed: $(tail -5 "$WORK/fact_model.log")"
"$RANDOM_MODEL" --config=gpt2 --n_layer=2 --n_embd=64 --n_head=2 --byte_level \
  --out="$WORK/other" --seed=1 >"$WORK/random_model.log" 2>&1 || die "romed-random-model failed"
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
must "$A_ADDR" --json session create --name=source
SOURCE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/out")
must "$A_ADDR" edit --session="$SOURCE" --prompt="$TEMPLATE" --subject="$SUBJECT" \
  --target="$TARGET" --layer=1 --fact_token=last --identity_covariance
outputs "$A_ADDR" "$WORK/source" "$SOURCE"
outputs "$A_ADDR" "$WORK/base"
if cmp -s "$WORK/source.score" "$WORK/base.score"; then fail "the edit changed nothing"; else pass "the edit moved the scores"; fi

must "$A_ADDR" export --session="$SOURCE" --out="$WORK/session.safetensors"
grep -q "exported session $SOURCE: 1 edits" "$WORK/out" && pass "export" || fail "export: $(cat "$WORK/out")"
expect_error "export onto an existing file" FAILED_PRECONDITION "$A_ADDR" export --session="$SOURCE" --out="$WORK/session.safetensors"
[[ $(ctl "$A_ADDR" export --session="$SOURCE" --out="$WORK/session.safetensors" --overwrite) == 0 ]] &&
  pass "export --overwrite" || fail "export --overwrite: $(cat "$WORK/err")"

must "$B_ADDR" --json import --file="$WORK/session.safetensors"
IMPORTED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session"]["id"])' "$WORK/out")
outputs "$B_ADDR" "$WORK/imported" "$IMPORTED"
cmp -s "$WORK/source.score" "$WORK/imported.score" && pass "imported Score is byte-identical" ||
  fail "imported Score differs: $(cat "$WORK/source.score" "$WORK/imported.score")"
cmp -s "$WORK/source.generate" "$WORK/imported.generate" && pass "imported Generate is identical" ||
  fail "imported Generate differs"
must "$B_ADDR" edits --session="$IMPORTED"
grep -q "$TARGET" "$WORK/out" && pass "ListEdits shows the imported record" || fail "edits: $(cat "$WORK/out")"

stop "$B_PID"
start B "$WORK/model"
outputs "$B_ADDR" "$WORK/restarted" "$IMPORTED"
cmp -s "$WORK/source.score" "$WORK/restarted.score" && pass "the import survived a restart" ||
  fail "after restart: $(cat "$WORK/restarted.score")"

head -c 100 "$WORK/session.safetensors" >"$WORK/truncated.safetensors"
expect_error "truncated file" INVALID_ARGUMENT "$B_ADDR" import --file="$WORK/truncated.safetensors"
expect_error "unknown session" NOT_FOUND "$A_ADDR" export --session=s-0000000000000000 --out="$WORK/x"
expect_error "import into a session with edits" FAILED_PRECONDITION "$B_ADDR" import \
  --file="$WORK/session.safetensors" --session="$IMPORTED"

must "$A_ADDR" export-model --session="$SOURCE" --out="$WORK/merged"
grep -q "serve it: romed --model=$WORK/merged" "$WORK/out" && pass "export-model" || fail "export-model: $(cat "$WORK/out")"
expect_error "export-model onto an existing dir" FAILED_PRECONDITION "$A_ADDR" export-model \
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
checksum() { must "$1" --json info; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checksum"])' "$WORK/out"; }
A_SUM=$(checksum "$A_ADDR")
C_SUM=$(checksum "$C_ADDR")
[[ -n "$A_SUM" && "$A_SUM" != "$C_SUM" ]] && pass "the merged model has its own checksum" || fail "checksums $A_SUM / $C_SUM"

start D "$WORK/other"
D_SUM=$(checksum "$D_ADDR")
expect_error "import on another base model" FAILED_PRECONDITION "$D_ADDR" import --file="$WORK/session.safetensors"
grep -q "$A_SUM" "$WORK/err" && grep -q "$D_SUM" "$WORK/err" && pass "the message names both checksums" ||
  fail "another model: $(cat "$WORK/err")"

if ((FAILURES > 0)); then
  echo "$FAILURES check(s) failed" >&2
  exit 1
fi
echo "all export/import checks passed"
