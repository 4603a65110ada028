#!/usr/bin/env bash
# Forgetting on a skewed appended batch (issue 16's retraining loop), on sms-spam:
# version 1 = the first half of the prepared rows in source order (id number); the appended
# batch = the second half's ham plus every 10th of its spam, so spam is nearly absent. A
# mini-l2-h128 student s1 is distilled on version 1, then continued for one epoch on version 2
# replaying 0, 0.3 or all of the version-1 rows; old-test scores tell what each forgot.
#
#   TEACHER=sms-teacher.h5 DATA=data/sms-spam benchmarks/forgetting-skewed.sh OUT
#
# TEACHER: a teacher fine-tuned on DATA (its labels ham, spam); KD (.build/release/kd).
# Writes OUT/old.csv, new-skewed.csv, sms-v1/, sms-skew-v2/, the caches, s1.h5, s2-rF.h5, and
# per model OUT/M.old-test.json / M.v2-test.json (kd eval --json), then prints a table.
set -euo pipefail
OUT=${1:?usage: TEACHER=T DATA=D $0 OUT}
KD=$(realpath "${KD:-.build/release/kd}"); T=${TEACHER:?set TEACHER}; D=${DATA:?set DATA}
S=students/mini-l2-h128.json; L=(--losses soft_ce=1,hard_ce=0.5 --threads 2 --seed 13)
mkdir -p "$OUT"
python3 - "$D" "$OUT" <<'PY'
import csv, json, sys
data, out = sys.argv[1:]
rows = []
for split in ("train", "dev", "test"):
    for line in open(f"{data}/{split}.jsonl"):
        r = json.loads(line)
        rows.append((int(r["id"].rsplit(":", 1)[1]), r["text"], r["label"]))
rows.sort()
half = len(rows) // 2
def write(path, rs):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([t, l] for _, t, l in rs)
new = rows[half:]
spam = [r for r in new if r[2] == "spam"]
write(f"{out}/old.csv", rows[:half])
write(f"{out}/new-skewed.csv", [r for r in new if r[2] == "ham"] + spam[::10])
print(f"{len(rows)} rows: version 1 {half}; appended {len(new) - len(spam)} ham + {len(spam[::10])} of {len(spam)} spam")
PY
[ -d "$OUT/sms-v1" ] || "$KD" data prepare --csv "$OUT/old.csv" --text-column text --label-column label --name sms --out "$OUT/sms-v1"
[ -d "$OUT/sms-skew-v2" ] || "$KD" data prepare --append "$OUT/new-skewed.csv" --base "$OUT/sms-v1" --out "$OUT/sms-skew-v2"
[ -f "$OUT/labels-v1.h5" ] || "$KD" label --teacher "$T" --data "$OUT/sms-v1" --out "$OUT/labels-v1.h5" --threads 2
[ -f "$OUT/labels-v2.h5" ] || "$KD" label --teacher "$T" --data "$OUT/sms-skew-v2" --out "$OUT/labels-v2.h5" --threads 2
[ -f "$OUT/s1.h5" ] || "$KD" distill --teacher "$T" --student $S --labels "$OUT/labels-v1.h5" --data "$OUT/sms-v1" \
    --out "$OUT/s1.h5" "${L[@]}" --json > "$OUT/s1.json"
for r in 0 0.3 1; do
  [ -f "$OUT/s2-r$r.h5" ] || "$KD" distill --teacher "$T" --student $S --labels "$OUT/labels-v2.h5" --data "$OUT/sms-skew-v2" \
      --init "$OUT/s1.h5" --replay-fraction $r --epochs 1 --out "$OUT/s2-r$r.h5" "${L[@]}" --json > "$OUT/s2-r$r.json"
done
for m in s1 s2-r0 s2-r0.3 s2-r1; do
  "$KD" eval --model "$OUT/$m.h5" --data "$OUT/sms-v1" --split test --json --threads 2 > "$OUT/$m.old-test.json"
  "$KD" eval --model "$OUT/$m.h5" --data "$OUT/sms-skew-v2" --split test --json --threads 2 > "$OUT/$m.v2-test.json"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
print("| student | old test macro-F1 | old test spam recall | v2 test macro-F1 |")
print("|---|---:|---:|---:|")
for m in ("s1", "s2-r0", "s2-r0.3", "s2-r1"):
    old, v2 = (json.load(open(f"{out}/{m}.{s}.json")) for s in ("old-test", "v2-test"))
    spam = next(c for c in old["per_class"] if c["label"] == "spam")
    hits = round(spam["recall"] * spam["support"])
    print(f"| {m} | {old['macro_f1']:.4f} | {spam['recall']:.4f} ({hits}/{spam['support']}) | {v2['macro_f1']:.4f} |")
PY
