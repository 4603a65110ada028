#!/usr/bin/env bash
# Kill test of `kd run` (issue 14): the tiny recipe (Tests/Fixtures/pipeline/tiny-recipe.json:
# every stage on the tiny fixture model and the toy dataset, seconds each) runs once
# uninterrupted, then again in another run folder SIGKILLed at random moments KILLS times,
# each time restarted, and finally run to the end. Checked:
#   - after every kill, each finished step (done.json) has outputs whose sha256 are the ones
#     its marker records and the uninterrupted run's; a model file under its final name in
#     an unfinished step folder equals the reference too (never half written);
#   - the final run folder has the same steps, keys and output hashes as the reference
#     (model files byte-identical), and its report's non-timing fields are the same.
#   scripts/kill-resume.sh [KILLS]        default 6 (about 40 s in a debug build)
# KD=path/to/kd overrides the binary (default: .build/debug/kd, built if missing);
# RECIPE=… another small recipe (Tests/Fixtures/pipeline/tiny-sweep-recipe.json: a pruning
# sweep and a scheme grid, killed inside their trials).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-6}
KD=${KD:-.build/debug/kd}
[[ -x $KD ]] || swift build --product kd >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-kill-resume.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$KD" "$work/kd" && KD=$work/kd   # a copy: a rebuild during the test must not swap the binary
recipe=${RECIPE:-Tests/Fixtures/pipeline/tiny-recipe.json}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

start=$(date +%s.%N)
"$KD" run "$recipe" --out "$work/ref" >/dev/null 2>"$work/ref.log" || { cat "$work/ref.log"; exit 1; }
seconds=$(echo "$(date +%s.%N) - $start" | bc)
echo "uninterrupted run: ${seconds} s"

# Every finished step's outputs match its marker and the reference; files with final names
# in unfinished step folders (models, caches, exports) equal the reference's.
check_folder() {   # $1 run folder, $2 label
    python3 - "$1" "$work/ref" "$2" <<'EOF' || failures=$((failures + 1))
import hashlib, json, os, sys
run, ref, label = sys.argv[1:4]
def sha(path):
    if os.path.isdir(path):
        lines = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in files:
                if not f.startswith("."):
                    p = os.path.join(root, f)
                    lines.append(f"{os.path.relpath(p, path)} {sha(p)}")
        return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
bad = []
stages = os.path.join(run, "stages")
for step in sorted(os.listdir(stages)) if os.path.isdir(stages) else []:
    folder, reference = os.path.join(stages, step), os.path.join(ref, "stages", step)
    marker = os.path.join(folder, "done.json")
    if os.path.exists(marker):
        m = json.load(open(marker))
        for name, digest in m["outputs"].items():
            if sha(os.path.join(folder, name)) != digest:
                bad.append(f"{step}/{name}: does not match its done.json")
        if not step.startswith(("bench", "report")):
            if not os.path.exists(os.path.join(reference, "done.json")):
                bad.append(f"{step}: finished here but not a step of the reference run")
            elif json.load(open(os.path.join(reference, "done.json")))["outputHash"] != m["outputHash"]:
                bad.append(f"{step}: outputs differ from the uninterrupted run")
    else:
        for name in os.listdir(folder):
            if name.startswith(".") or name.endswith((".ckpt.h5", ".jsonl")) or name in ("sweep",):
                continue
            if os.path.exists(os.path.join(reference, name)) and sha(os.path.join(folder, name)) != sha(os.path.join(reference, name)):
                bad.append(f"{step}/{name}: an unfinished step left a file under its final name that differs from the reference")
for b in bad:
    print(f"FAIL ({label}): {b}")
sys.exit(1 if bad else 0)
EOF
}

finished_early=0 resumable=0
for ((i = 1; i <= kills; i++)); do
    "$KD" run "$recipe" --out "$work/run" >/dev/null 2>>"$work/run.log" &
    pid=$!
    delay=$(python3 -c "import random; print(round(random.uniform(0.05, max(0.1, $seconds * 0.5)), 2))")
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        finished=$(find "$work/run/stages" -name done.json | wc -l)
        checkpoints=$(find "$work/run/stages" -name '*.ckpt.h5' | wc -l)
        [[ $checkpoints == 0 ]] || resumable=$((resumable + 1))
        echo "kill $i after ${delay} s: $finished steps finished, $checkpoints checkpoint(s) to resume from"
    else
        wait "$pid" || fail "run $i exited with an error"
        finished_early=$((finished_early + 1))
        echo "kill $i after ${delay} s: the run had already finished"
    fi
    check_folder "$work/run" "after kill $i"
done
"$KD" run "$recipe" --out "$work/run" >/dev/null 2>>"$work/run.log" || { tail -5 "$work/run.log"; fail "the resumed run failed"; }
check_folder "$work/run" "final"

# Same steps and keys as the reference; the report's non-timing fields equal.
# (the report's key includes the bench's timings, so the report folder is left out)
ref_steps=$(cd "$work/ref/stages" && ls | grep -v '^report\.' | sort | tr '\n' ' ')
run_steps=$(cd "$work/run/stages" && for d in *; do [[ -f $d/done.json && $d != report.* ]] && echo "$d"; done | sort | tr '\n' ' ')
[[ $ref_steps == "$run_steps" ]] || fail "finished steps differ: reference [$ref_steps] resumed [$run_steps]"
if [[ -f $work/ref/report/report.json ]]; then
    python3 - "$work/ref/report/report.json" "$work/run/report/report.json" <<'EOF' || fail "the reports' non-timing fields differ"
import json, sys
timing = {"created", "latency", "throughput", "loadMs", "load_ms", "peakMemoryBytes", "peak_memory_bytes", "runID", "run_id", "machine"}
def strip(v):
    if isinstance(v, dict):   # model paths: the same file inside either run folder
        return {k: (x.split("/stages/")[-1] if k == "path" else strip(x)) for k, x in v.items() if k not in timing}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
if a != b:
    print(json.dumps(a, indent=1)[:2000]); print(json.dumps(b, indent=1)[:2000]); sys.exit(1)
EOF
else
    echo "(the recipe has no report step: only the model files were compared)"
fi
echo "kills: $kills ($resumable left a training checkpoint to resume, $finished_early landed after the run had finished); failures: $failures"
[[ $failures == 0 ]]
