#!/usr/bin/env bash
# Multi-task vs single-task students on the three packaged datasets (issue 16): the same
# student spec, losses, epochs and per-task budget on both sides; each task's label cache
# comes from its own fine-tuned teacher.
#
#   benchmarks/multitask-measure.sh OUT single|multi|eval|all
#
# Inputs (environment), per task T in SMS BBC TWEET: T_TEACHER, T_LABELS, T_DATA
# (the teacher, its `kd label` cache and the prepared dataset folder it was made from).
# Settings: KD (.build/release/kd), STUDENT (students/mini-l2-h128.json), EPOCHS (2),
# LIMIT (3000: the first N cached training examples of every task, both sides),
# SAMPLING (sqrt), THREADS (2).
# Writes OUT/{sms,bbc,tweet}-single.h5, OUT/multi-SAMPLING.h5, a .json per run and per
# evaluation (test split), and OUT/summary.md (per-task macro-F1, bytes).
set -euo pipefail
OUT=${1:?usage: $0 OUT single|multi|eval|all}; STEP=${2:-all}
KD=$(realpath "${KD:-.build/release/kd}")
STUDENT=${STUDENT:-students/mini-l2-h128.json}
EPOCHS=${EPOCHS:-2}; LIMIT=${LIMIT:-3000}; SAMPLING=${SAMPLING:-sqrt}; THREADS=${THREADS:-2}
TASKS=(sms bbc tweet)
NAMES=(sms-spam bbc-news tweet-sentiment)
mkdir -p "$OUT"
var() { local v="${1^^}_$2"; [ -n "${!v:-}" ] || { echo "$0: set $v" >&2; exit 1; }; echo "${!v}"; }
common=(--student "$STUDENT" --losses soft_ce=1,hard_ce=0.5 --epochs "$EPOCHS" --train-limit "$LIMIT"
        --threads "$THREADS" --seed 13 --json)
log() { echo "+ $*" >&2; "$@"; }

single() {
  for t in "${TASKS[@]}"; do
    log "$KD" distill --teacher "$(var $t TEACHER)" --labels "$(var $t LABELS)" --data "$(var $t DATA)" \
        "${common[@]}" --out "$OUT/$t-single.h5" > "$OUT/$t-single.json"
  done
}
multi() {
  local args=()
  for i in "${!TASKS[@]}"; do t=${TASKS[$i]}
    args+=(--task "${NAMES[$i]}" --teacher "$(var $t TEACHER)" --labels "$(var $t LABELS)" --data "$(var $t DATA)")
  done
  log "$KD" distill "${args[@]}" "${common[@]}" --task-sampling "$SAMPLING" --out "$OUT/multi-$SAMPLING.h5" \
      > "$OUT/multi-$SAMPLING.json"
}
evaluate() {
  {
    echo "| task | single-task macro-F1 | multi-task ($SAMPLING) macro-F1 | single bytes |"
    echo "|---|---:|---:|---:|"
    total=0
    for i in "${!TASKS[@]}"; do t=${TASKS[$i]}
      "$KD" eval --model "$OUT/$t-single.h5" --data "$(var $t DATA)" --threads "$THREADS" --json > "$OUT/$t-single.eval.json"
      "$KD" eval --model "$OUT/multi-$SAMPLING.h5" --task "${NAMES[$i]}" --data "$(var $t DATA)" --threads "$THREADS" \
          --json > "$OUT/multi-$SAMPLING.$t.eval.json"
      bytes=$(stat -c %s "$OUT/$t-single.h5"); total=$((total + bytes))
      python3 - "$OUT/$t-single.eval.json" "$OUT/multi-$SAMPLING.$t.eval.json" "${NAMES[$i]}" "$bytes" <<'PY'
import json, sys
def f1(path):
    return json.load(open(path))["macro_f1"]
print(f"| {sys.argv[3]} | {f1(sys.argv[1]):.4f} | {f1(sys.argv[2]):.4f} | {int(sys.argv[4]):,} |")
PY
    done
    echo
    echo "Bytes: three single-task students $total; one multi-task student $(stat -c %s "$OUT/multi-$SAMPLING.h5")."
  } > "$OUT/summary.md"
  cat "$OUT/summary.md"
}
case $STEP in
  single) single ;; multi) multi ;; eval) evaluate ;;
  all) single; multi; evaluate ;;
  *) echo "$0: unknown step '$STEP' (single, multi, eval, all)" >&2; exit 2 ;;
esac
