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

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init eval "ROMED ROMECTL ROMED_FACT_MODEL" "$@"
readonly ROMED=$1 ROMECTL=$2 FACT_MODEL=$3
CTL_TIMEOUT_S=300

# py WHAT CODE: a Python assertion over the files in $WORK (sys.argv[1]).
py() {
  if python3 -c "$2" "$WORK" 2>"$WORK/py.err"; then pass "$1"; else fail "$1: $(cat "$WORK/py.err")"; fi
}

make_fact_model "$WORK/model"
romed_start main "$WORK/model" --drain_seconds=1
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
expect_error "a missing dataset" NOT_FOUND "cannot open dataset" eval --dataset="$WORK/missing.json"

e2e_finish "all e2e eval checks passed"
