#!/usr/bin/env bash
# End-to-end CounterFact evaluation: a real romed on a quick fact model,
# driven by `romectl eval`.
#
#   e2e_eval_test.sh ROMED ROMECTL ROMED_FACT_MODEL
#
# Runs a session-per-case evaluation (text table, --json=PATH, --csv) and
# checks one case's unedited log-probabilities against a separate `romectl
# score`, that edits raised ES and that no session is left behind; a
# sequential run with checkpoints, the checkpoints CSV and a well-formed SVG;
# a dataset with a bad record (named, skipped, counted); a missing dataset.
# Loopback only; the server is killed and the temp dir removed on any exit
# (ROMED_E2E_KEEP=1 keeps it).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 ROMED ROMECTL ROMED_FACT_MODEL" >&2
  exit 2
fi
readonly ROMED=$1 ROMECTL=$2 FACT_MODEL=$3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-e2e-eval.XXXXXX")
readonly WORK
SERVER_PID=""
FAILURES=0

cleanup() {
  [[ -n "$SERVER_PID" ]] && kill -KILL "$SERVER_PID" 2>/dev/null || true
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

# ctl args...: romectl against the server; output in $WORK/out, $WORK/err; prints rc.
ctl() {
  local rc=0
  "$ROMECTL" --server="$ADDR" --timeout_s=300 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  echo "$rc"
}
must() { local rc; rc=$(ctl "$@"); [[ $rc == 0 ]] || die "romectl $* (rc $rc): $(cat "$WORK/err")"; }
# check WHAT FILE PATTERN: FILE contains the (grep -E) PATTERN.
check() {
  if grep -qE -- "$3" "$2"; then pass "$1"; else fail "$1: '$3' not in $(cat "$2")"; fi
}
# py WHAT CODE: a Python assertion over the files in $WORK (sys.argv[1]).
py() {
  if python3 -c "$2" "$WORK" 2>"$WORK/py.err"; then pass "$1"; else fail "$1: $(cat "$WORK/py.err")"; fi
}

"$FACT_MODEL" --out="$WORK/model" --quick >"$WORK/fact_model.log" 2>&1 ||
  die "romed-fact-model failed: $(tail -5 "$WORK/fact_model.log")"

LOG="$WORK/romed.log"
"$ROMED" --model="$WORK/model" --host=127.0.0.1 --port=0 --metrics_port=0 \
  --state_dir="$WORK/state" --threads=1 --drain_seconds=1 >"$LOG" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$LOG" | head -1)
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "romed exited: $(tail -5 "$LOG")"
  sleep 0.1
done
[[ -n "$PORT" ]] || die "romed logged no port"
ADDR="127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  "$ROMECTL" --server="$ADDR" health >/dev/null 2>&1 && break
  sleep 0.2
done
LAYER=$(( $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_layer"])' \
  "$WORK/model/config.json") - 1 ))

# Session per case: the paper's protocol.
must eval --dataset="$WORK/model/counterfact.json" --n=3 --layer="$LAYER" --fact_token=last \
  --gen_length=32 --json="$WORK/spc.json" --csv="$WORK/spc.csv"
cp "$WORK/out" "$WORK/spc.txt"
cp "$WORK/err" "$WORK/spc.err"
check "eval prints the table" "$WORK/spc.txt" "^ROME +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+"
check "eval prints the unedited row" "$WORK/spc.txt" "^unedited +[0-9.]+"
check "eval reports throughput" "$WORK/spc.txt" "cases/min"
check "eval draws a progress bar" "$WORK/spc.err" "3/3 cases edited and scored"
py "the JSON report has 3 edited cases, GE and timings" '
import json, sys
r = json.load(open(sys.argv[1] + "/spc.json"))
assert r["mode"] == "session-per-case" and len(r["cases"]) == 3, r["mode"]
assert r["summary"]["edited"]["cases"] == 3 and r["failed_cases"] == 0
assert r["summary"]["edited"]["es"] >= r["summary"]["unedited"]["es"]
assert r["summary"]["edited"]["ge"] > 0 and r["timing"]["mean_edit_s"] > 0
for c in r["cases"]:
    assert c["layer"] >= 0 and len(c["edited"]["generations"]) >= 1, c
'
py "the CSV has a header and one row per case" '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/spc.csv")))
assert len(rows) == 3 and rows[0]["edited_es"] != "", rows
'
# The unedited log-probabilities equal a separate Score of the same prompt.
eval "$(python3 - "$WORK" <<'PY'
import json, shlex, sys
r = json.load(open(sys.argv[1] + "/spc.json"))
d = json.load(open(sys.argv[1] + "/model/counterfact.json"))[0]["requested_rewrite"]
print("PROMPT=" + shlex.quote(d["prompt"].replace("{}", d["subject"])))
print("NEW=" + shlex.quote(" " + d["target_new"]["str"]))
print("TRUE=" + shlex.quote(" " + d["target_true"]["str"]))
print("EVAL_LOGP=" + shlex.quote(json.dumps(r["cases"][0]["unedited"]["logp_rewrite"][0])))
PY
)"
must --json score --prompt="$PROMPT" --continuation="$NEW" --continuation="$TRUE"
cp "$WORK/out" "$WORK/score.json"
py "eval's scores equal a separate Score call" "
import json, sys
s = json.load(open(sys.argv[1] + '/score.json'))['scores']
e = $EVAL_LOGP
assert abs(s[0]['mean_logprob'] - e[0]) < 1e-6 and abs(s[1]['mean_logprob'] - e[1]) < 1e-6, (s, e)
"
must --json session list
py "eval deleted its sessions" '
import json, sys
assert not json.load(open(sys.argv[1] + "/out")).get("sessions"), open(sys.argv[1] + "/out").read()
'

# Sequential: edits stacked in one session, checkpoints every 2 edits.
must eval --dataset="$WORK/model/counterfact.json" --n=4 --sequential --every=2 \
  --layer="$LAYER" --fact_token=last --gen_length=0 --csv="$WORK/seq.csv" --svg="$WORK/seq.svg" \
  --noprogress
cp "$WORK/out" "$WORK/seq.txt"
check "sequential prints checkpoints" "$WORK/seq.txt" "^ +4 +[0-9.]+ .*%"
check "sequential states the retention" "$WORK/seq.txt" "retention of the other facts"
py "the checkpoints CSV has one row per checkpoint" '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/seq.checkpoints.csv")))
assert [r["edits"] for r in rows] == ["2", "4"], rows
assert all(0 <= float(r["retention"]) <= 1 for r in rows), rows
'
py "the SVG is well-formed with a legend" '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1] + "/seq.svg").getroot()
text = "".join(root.itertext())
assert "retention, other facts" in text and "number of sequential edits" in text, text
'

# Bad records are named, skipped and counted.
python3 - "$WORK" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/model/counterfact.json"))[:3]
del d[1]["requested_rewrite"]["subject"]
json.dump(d, open(sys.argv[1] + "/bad.json", "w"))
PY
must eval --dataset="$WORK/bad.json" --layer="$LAYER" --fact_token=last --gen_length=0 \
  --json="$WORK/bad_report.json" --noprogress
check "a bad record is named" "$WORK/err" "skipped record 1 \(case_id [0-9]+\): requested_rewrite.subject: missing"
check "the run goes on past it" "$WORK/out" "2 cases of .*\(1 bad records skipped"
py "the JSON counts it" '
import json, sys
r = json.load(open(sys.argv[1] + "/bad_report.json"))
assert r["records"]["bad"] == 1 and len(r["cases"]) == 2, r["records"]
'
rc=$(ctl eval --dataset="$WORK/missing.json")
[[ $rc == 1 ]] && grep -q "error: NOT_FOUND: cannot open dataset" "$WORK/err" &&
  pass "a missing dataset: NOT_FOUND" || fail "a missing dataset (rc $rc): $(cat "$WORK/err")"

[[ $FAILURES -eq 0 ]] || exit 1
echo "all e2e eval checks passed"
