#!/usr/bin/env bash
# prune_l3_tweet.sh — issue 11's last target on tweet-sentiment: distil-l3-h384 pruned at
# three levels (+ vocabulary on one), each distilled back against the fine-tuned teacher's
# soft labels; then test macro-F1 and agreement with the teacher before pruning, right after
# and after recovery, and batch-1/32 latency of every model in turns with the teacher.
# benchmarks/results/2026-12-02-pruning-l3-tweet-sentiment.md was made with it.
#
#   benchmarks/prune_l3_tweet.sh OUTDIR [step…]
#   steps: importance prune recover vocab eval bench   (default: all, in that order)
#
# Inputs (environment; defaults = the tweet-sentiment study's stage folders):
#   KD        kd binary                          (.build/release/kd)
#   TEACHER   the fine-tuned teacher              (…/stages/teacher.*/teacher.h5)
#   LABELS    its label cache                     (…/stages/label.*/labels.h5)
#   L3        distil-l3-h384 distilled from it    (…/stages/distill-l3.*/model.h5)
#   DATA      the prepared data the cache is of   (…/stages/prepare.*/tweet-sentiment)
#   LEVELS    "heads:ffn …"                      ("0.2:0.25 0.4:0.5 0.6:0.7")
#   VOCAB_LEVEL  the level also vocabulary-pruned (0.4:0.5)
#   LIMIT     recovery budget: the first N cached training examples (empty: all)
#   LR        recovery peak learning rate (1e-4)   THREADS  (2)
#   QUIET     wrapper for the timed runs (/work/bin/quiet when present)
# Recovery: `kd prune` (importance against the teacher's cached soft labels), then
# `kd distill --init PRUNED` with a spec of the pruned shapes and soft cross-entropy (T = 1)
# on the cache's logits only, so the teacher is not run online. The one-command form with
# hidden-state MSE against the teacher's layers 2, 4, 6 as well (teacher online, ~2× the
# cost per step) is `kd prune … --teacher T --schedule 1 --recover-teacher-layers 2,4,6`.
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [importance prune recover vocab eval bench]}; shift
STEPS=${*:-importance prune recover vocab eval bench}
STUDY=${STUDY:-/work/runs/tweet-study/stages}
KD=$(realpath "${KD:-.build/release/kd}")
first() { ls -d $1 2>/dev/null | head -1; }
TEACHER=${TEACHER:-$(first "$STUDY/teacher.*/teacher.h5")}
LABELS=${LABELS:-$(first "$STUDY/label.*/labels.h5")}
L3=${L3:-$(first "$STUDY/distill-l3.*/model.h5")}
DATA=${DATA:-$(first "$STUDY/prepare.*/tweet-sentiment")}
LEVELS=${LEVELS:-0.2:0.25 0.4:0.5 0.6:0.7}
VOCAB_LEVEL=${VOCAB_LEVEL:-0.4:0.5}
LR=${LR:-1e-4}; THREADS=${THREADS:-2}
QUIET=${QUIET:-$( [ -x /work/bin/quiet ] && echo /work/bin/quiet || echo)}
for f in "$TEACHER" "$LABELS" "$L3" "$DATA"; do [ -e "$f" ] || { echo "missing input '$f' (TEACHER, LABELS, L3, DATA)" >&2; exit 1; }; done
mkdir -p "$OUT"
log() { echo "+ $*" >&2; "$@"; }
name() { echo "l3-h${1%%:*}-f${1##*:}"; }

for step in $STEPS; do case $step in
importance)
  log "$KD" prune --importance --model "$L3" --teacher "$TEACHER" --data "$DATA" --labels "$LABELS" \
      --samples 1024 --threads "$THREADS" --json > "$OUT/importance.json" ;;
prune)
  for level in $LEVELS; do
    n=$(name "$level")
    log "$KD" prune --model "$L3" --teacher "$TEACHER" --out "$OUT/$n.pruned.h5" --heads "${level%%:*}" --ffn "${level##*:}" \
        --data "$DATA" --labels "$LABELS" --samples 1024 --threads "$THREADS" --json > "$OUT/$n.prune.json"
  done ;;
recover)
  for level in $LEVELS; do
    n=$(name "$level")
    python3 - "$OUT/$n.prune.json" "$OUT/$n.student.json" <<'PY'
import json, sys
after = json.load(open(sys.argv[1]))["after"]
spec = {"format": "distillery-student", "version": 1, "name": "l3-pruned",
        "description": "recovery of a pruned distil-l3-h384: kd distill --init the pruned file",
        "architecture": {"layers": after["layers"], "hidden_size": 384, "heads": 12, "intermediate_size": 1536,
                         "layer_heads": after["heads"], "layer_intermediate_sizes": after["ffn"]},
        "init": {"from": "random"}, "layer_map": {"kind": "explicit", "teacher_layers": [2, 4, 6][:after["layers"]]},
        "losses": {"soft_ce": 1}, "temperature": 1.0, "schedule": {"kind": "one-stage", "epochs": 1},
        "training": {"learning_rate": 1e-4, "batch_size": 32}}
json.dump(spec, open(sys.argv[2], "w"), indent=1)
PY
    log "$KD" distill --teacher "$TEACHER" --student "$OUT/$n.student.json" --init "$OUT/$n.pruned.h5" --labels "$LABELS" \
        --data "$DATA" --out "$OUT/$n.h5" --lr "$LR" ${LIMIT:+--train-limit $LIMIT} --threads "$THREADS" --json > "$OUT/$n.distill.json"
  done ;;
vocab)
  n=$(name "$VOCAB_LEVEL")
  for min in 1 2; do
    log "$KD" prune --model "$OUT/$n.h5" --out "$OUT/$n-vocab$min.h5" --vocab "$DATA" --vocab-min-count $min --json \
        > "$OUT/$n-vocab$min.json"
  done ;;
eval)
  for m in "$TEACHER" "$L3" "$OUT"/l3-*.h5; do
    r=$("$KD" eval --model "$m" --data "$DATA" --teacher "$TEACHER" --max-length 128 --threads "$THREADS" --json)
    echo "{\"model\": \"$m\", \"bytes\": $(stat -c %s "$m"), \"eval\": $r}" >> "$OUT/eval.jsonl"
  done ;;
bench)
  models=(--model "$TEACHER" --model "$L3")
  for level in $LEVELS; do models+=(--model "$OUT/$(name "$level").h5"); done
  for b in 1 32; do
    log $QUIET "$KD" bench latency "${models[@]}" --batch-size $b --seq 128 --threads 1,2 --warmup 2 --seconds 2 --rounds 4 \
        --json > "$OUT/latency-b$b.json"
  done ;;
*) echo "unknown step '$step'" >&2; exit 2 ;;
esac; done
