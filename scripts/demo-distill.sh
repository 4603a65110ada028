#!/usr/bin/env bash
# The main job of `make demo` on the packaged default: MiniLM-L6 fine-tuned on sms-spam
# (one epoch), its soft labels cached once, a 3-layer student distilled from them
# (distil-l3-h384, one epoch), and a side-by-side of teacher and student: test accuracy,
# macro-F1, agreement, KL, parameters, file size and batch-1 latency.
# Steps whose output exists are skipped (delete out/demo to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
KD=${KD:-.build/release/kd}
TEACHER=${TEACHER:-teachers/minilm-l6/teacher.h5}
DATA=data/sms-spam
OUT=out/demo
THREADS=${THREADS:-2}
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

[ -f "$DATA/manifest.json" ] || { step "prepare sms-spam"; "$KD" data prepare sms-spam --out "$DATA"; }
if [ ! -f "$OUT/sms-teacher.h5" ]; then
    step "fine-tune the teacher (1 epoch)"
    "$KD" finetune --model "$TEACHER" --data "$DATA" --out "$OUT/sms-teacher.h5" --epochs 1 --threads "$THREADS"
fi
if [ ! -f "$OUT/sms-labels.h5" ]; then
    step "cache the teacher's soft labels"
    "$KD" label --teacher "$OUT/sms-teacher.h5" --data "$DATA" --out "$OUT/sms-labels.h5" --threads "$THREADS"
fi
if [ ! -f "$OUT/sms-l3.h5" ]; then
    step "distil a 3-layer student (1 epoch)"
    "$KD" distill --teacher "$OUT/sms-teacher.h5" --student students/distil-l3-h384.json --labels "$OUT/sms-labels.h5" \
        --data "$DATA" --out "$OUT/sms-l3.h5" --epochs 1 --threads "$THREADS"
fi

step "teacher vs student on the test split"
"$KD" eval --model "$OUT/sms-teacher.h5" --data "$DATA" --split test --json > "$OUT/teacher.eval.json"
"$KD" eval --model "$OUT/sms-l3.h5" --data "$DATA" --split test --teacher "$OUT/sms-teacher.h5" --json > "$OUT/student.eval.json"
# Both models in one run, taking turns, so the machine's drift hits both alike.
"$KD" bench latency --model "$OUT/sms-teacher.h5" --model "$OUT/sms-l3.h5" --batch-size 1 --seq 128 --threads 1 \
    --seconds 4 --json > "$OUT/latency.json"
python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)
latency = {os.path.basename(r["model"])[:-3]: r for r in load("latency.json")}
rows = []
for label, model, ev in [("teacher (MiniLM-L6, 6 layers)", "sms-teacher", "teacher.eval.json"),
                         ("student (distil-l3-h384)", "sms-l3", "student.eval.json")]:
    e, lat = load(ev), latency[model]
    size = os.path.getsize(os.path.join(out, f"{model}.h5")) / 1e6
    rows.append((label, e["accuracy"], e["macro_f1"], e.get("agreement"), e.get("mean_kl"), size, lat["median_ms"]))
print(f"{'model':32} {'accuracy':>8} {'macro-F1':>8} {'agree':>6} {'KL':>8} {'file MB':>8} {'b1 ms':>7}")
for r in rows:
    agree = f"{r[3]:.4f}" if r[3] is not None else "—"
    kl = f"{r[4]:.5f}" if r[4] is not None else "—"
    print(f"{r[0]:32} {r[1]:8.4f} {r[2]:8.4f} {agree:>6} {kl:>8} {r[5]:8.1f} {r[6]:7.2f}")
t, s = rows
print(f"student keeps {100 * s[2] / t[2]:.1f}% of the teacher's macro-F1 at {t[6] / s[6]:.2f}x lower batch-1 latency (seq 128, 1 thread)")
EOF
