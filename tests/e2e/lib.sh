# shellcheck shell=bash
# The harness shared by the end-to-end scripts in this directory: a temp dir,
# romed servers on 127.0.0.1 driven by romectl, PASS/FAIL bookkeeping.
# Sourced (never run) right after `set -euo pipefail`:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   e2e_init NAME "ROMED ROMECTL ..." "$@"
#   readonly ROMED=$1 ROMECTL=$2 ...
#
# The script sets ROMED and ROMECTL (the binaries), and RANDOM_MODEL or
# FACT_MODEL for make_random_model / make_fact_model.
#
# Globals: WORK (the temp dir), FAILURES (fail/die calls so far), START_S
# (ROMED_E2E_START_S, default 60: bound on each startup wait), SERVER (the
# host:port romectl talks to: the last server started unless the script
# assigns it, also for one call as `SERVER=$A_ADDR must ...`), LOG (the last
# started server's log), PIDS (servers to kill on exit), CTL_TIMEOUT_S
# (romectl's --timeout_s, default 60; set by a script globally or for one
# call as `CTL_TIMEOUT_S=2 ctl ...`).
#
# e2e_init NAME USAGE ARGS...  exit 2 with "usage: $0 USAGE" unless ARGS has one
#                      word per word of USAGE; makes WORK (romed-e2e-NAME.XXXXXX)
#                      and installs e2e_cleanup as the EXIT trap.
# e2e_cleanup          kills (SIGKILL) the servers still in PIDS; removes WORK
#                      unless FAILURES > 0 or ROMED_E2E_KEEP=1 ("logs kept in").
# e2e_finish MESSAGE   FAILURES > 0: prints the count and every romed log to
#                      stderr and exits 1; otherwise prints MESSAGE.
# pass MSG / fail MSG  "PASS: MSG" on stdout / "FAIL: MSG" on stderr, counted.
# die MSG              "FATAL: MSG" and the tail of LOG on stderr, exit 1.
# check WHAT FILE RE   PASS if FILE has a line matching the grep -E RE.
# free_port            echoes a TCP port on 127.0.0.1 nothing answers on now.
# ctl OUT ERR ARGS...  romectl ARGS against SERVER, stdout/stderr into the files;
#                      echoes the exit status, never aborts: rc=$(ctl ...).
# must ARGS...         romectl ARGS into $WORK/out, $WORK/err; dies unless exit 0.
# expect_error WHAT CODE RE ARGS...
#                      romectl ARGS (into $WORK/out, $WORK/err) must exit 1 with
#                      a stderr line matching ^error: CODE: .*RE (grep -E; RE ''
#                      for any message); PASS "WHAT: exit 1 and CODE".
# session_id FILE      echoes the id in the output of `--json session create`.
# make_random_model DIR  the tiny byte-level 2-layer checkpoint (seed 1) in DIR.
# make_fact_model DIR  `romed-fact-model --quick` into DIR.
# romed_start NAME MODEL_DIR [FLAGS...]
#                      romed_launch || die, then romed_wait_serving NAME.
# romed_launch NAME MODEL_DIR [FLAGS...]
#                      starts romed --model=MODEL_DIR --host=127.0.0.1 --port=0
#                      --state_dir=$WORK/state-NAME (the same on a restart)
#                      --metrics_port=0 --threads=1 --drain_seconds=5 and FLAGS
#                      (a FLAG replaces the default of the same name), logging to
#                      a new LOG ($WORK/romed.N.NAME.log); sets NAME_PID and,
#                      once romed logs "listening on 127.0.0.1:PORT", NAME_ADDR
#                      and SERVER. Returns 1 (no die) if romed exits before
#                      that; dies if that takes more than START_S.
# romed_wait_serving NAME
#                      waits until `romectl health` prints SERVING (exit 0) for
#                      server NAME; PASS "romed NAME SERVING on ADDR after N s";
#                      dies if romed exits or START_S passes first.
# romed_stop NAME [WAIT_S]
#                      SIGTERM to server NAME and waits up to WAIT_S (default 60)
#                      s: sets STOP_RC to its exit status ("running" if it has
#                      not exited; cleanup kills it) and returns 0 iff it is 0.

readonly START_S=${ROMED_E2E_START_S:-60}
FAILURES=0
PIDS=()
ROMED_LOGS=()
SERVER=""
LOG=""
STOP_RC=""

e2e_init() {
  local name=$1 usage=$2 words
  shift 2
  read -ra words <<<"$usage"
  if [[ $# -ne ${#words[@]} ]]; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/romed-e2e${name:+-$name}.XXXXXX")
  readonly WORK
  trap e2e_cleanup EXIT
}

e2e_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ "${ROMED_E2E_KEEP:-0}" == 1 || $FAILURES -gt 0 ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}

e2e_finish() {
  if ((FAILURES > 0)); then
    echo "$FAILURES check(s) failed; romed logs:" >&2
    local log
    for log in "${ROMED_LOGS[@]}"; do
      echo "=== $log" >&2
      cat "$log" >&2
    done
    exit 1
  fi
  echo "$1"
}

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
die() {
  echo "FATAL: $*" >&2
  FAILURES=$((FAILURES + 1))
  [[ -n "$LOG" && -f "$LOG" ]] && tail -20 "$LOG" >&2
  exit 1
}

check() {
  if grep -qE -- "$3" "$2"; then pass "$1"; else fail "$1: '$3' not in $(cat "$2")"; fi
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

ctl() {
  local out=$1 err=$2 rc=0
  shift 2
  "$ROMECTL" --server="$SERVER" --timeout_s="${CTL_TIMEOUT_S:-60}" "$@" >"$out" 2>"$err" || rc=$?
  echo "$rc"
}

must() {
  local rc
  rc=$(ctl "$WORK/out" "$WORK/err" "$@")
  [[ $rc == 0 ]] || die "romectl $* (rc $rc): $(cat "$WORK/err")"
}

expect_error() {
  local what=$1 code=$2 re=$3 rc
  shift 3
  rc=$(ctl "$WORK/out" "$WORK/err" "$@")
  if [[ $rc == 1 ]] && grep -qE -- "^error: $code: .*$re" "$WORK/err"; then
    pass "$what: exit 1 and $code"
  else
    fail "$what (rc $rc, want 1 and '$code: .*$re'): $(cat "$WORK/out" "$WORK/err")"
  fi
}

session_id() { sed -n 's/.*"id":"\(s-[0-9a-f]*\)".*/\1/p' "$1"; }

make_random_model() {
  "$RANDOM_MODEL" --config=gpt2 --n_layer=2 --n_embd=64 --n_head=2 --byte_level \
    --out="$1" --seed=1 >"$WORK/random_model.log" 2>&1 ||
    die "romed-random-model failed: $(tail -5 "$WORK/random_model.log")"
}

make_fact_model() {
  "$FACT_MODEL" --out="$1" --quick >"$WORK/fact_model.log" 2>&1 ||
    die "romed-fact-model failed: $(tail -5 "$WORK/fact_model.log")"
}

romed_launch() {
  local name=$1 model=$2 port="" pid d f
  shift 2
  local flags=(--model="$model" --host=127.0.0.1 --port=0 --state_dir="$WORK/state-$name")
  for d in --metrics_port=0 --threads=1 --drain_seconds=5; do
    for f in "$@"; do [[ $f == "${d%%=*}="* ]] && continue 2; done
    flags+=("$d")
  done
  LOG="$WORK/romed.$((${#ROMED_LOGS[@]} + 1)).$name.log"
  ROMED_LOGS+=("$LOG")
  : >"$LOG"  # exists before the first read below
  "$ROMED" "${flags[@]}" "$@" >"$LOG" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  printf -v "${name}_PID" '%s' "$pid"
  local deadline=$((SECONDS + START_S))
  while ((SECONDS < deadline)); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$LOG" | head -1)
    if [[ -n "$port" ]]; then
      SERVER="127.0.0.1:$port"
      printf -v "${name}_ADDR" '%s' "$SERVER"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      romed_forget "$pid"
      return 1
    fi
    sleep 0.1
  done
  die "romed $name logged no port within $START_S s"
}

romed_wait_serving() {
  local name=$1 pid addr start=$SECONDS
  pid=${name}_PID
  pid=${!pid}
  addr=${name}_ADDR
  addr=${!addr}
  local deadline=$((SECONDS + START_S)) out="$WORK/health.out" err="$WORK/health.err"
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || die "romed $name exited while loading"
    if [[ $(SERVER=$addr CTL_TIMEOUT_S=2 ctl "$out" "$err" health) == 0 &&
          $(cat "$out") == SERVING ]]; then
      pass "romed $name SERVING on $addr after $((SECONDS - start)) s"
      return 0
    fi
    sleep 0.3
  done
  die "romed $name not SERVING within $START_S s (last: $(cat "$out" "$err"))"
}

romed_start() {
  romed_launch "$@" || die "romed $1 exited: $(tail -5 "$LOG")"
  romed_wait_serving "$1"
}

romed_stop() {
  local name=$1 wait_s=${2:-60} pid
  pid=${name}_PID
  pid=${!pid}
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + wait_s))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    STOP_RC=running
    return 1
  fi
  STOP_RC=0
  wait "$pid" 2>/dev/null || STOP_RC=$?
  romed_forget "$pid"
  [[ $STOP_RC == 0 ]]
}

# romed_forget PID: drops an exited (and reaped) server from PIDS.
romed_forget() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
