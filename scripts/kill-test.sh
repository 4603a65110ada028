#!/usr/bin/env bash
# Kill test (issue 15): `kd label`, `kd distill` and `kd finetune` on the tiny fixtures are
# SIGKILLed at random points, then run again (finetune and distill with --resume from their
# checkpoint when one was written) — the final file must have the same bytes as an
# uninterrupted run (one thread), no file may ever appear under a final name unless it is
# complete (a killed run's output, if there, equals the reference), and no partial file of
# the killed run may be left once the next run has finished; the training log lists each
# step once, in order. `kd data prepare --force` over an existing folder (made with another
# seed) is killed the same way: the folder must always be exactly the old one or exactly the
# new one (all four files), never missing or mixed, and no staging folder may outlive the rerun.
#   scripts/kill-test.sh [KILLS] [COMMAND...]    default: 20 kills each of label distill finetune prepare
# KD=path/to/kd overrides the binary (default: .build/debug/kd, built if missing).
# Prints per command: kills, how many landed before/after the first checkpoint, resumes, mismatches.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}; shift || true
commands=("${@:-label distill finetune prepare}")
commands=(${commands[@]})
KD=${KD:-.build/debug/kd}
[[ -x $KD ]] || swift build --product kd >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-kill-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$KD" "$work/kd" && KD=$work/kd   # a copy: a rebuild during the test must not swap the binary
fixtures=$PWD/Tests/Fixtures
sha() { sha256sum "$1" | cut -c1-64; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Fixtures: the tiny model, the toy dataset, a two-step classifier teacher, its label cache.
"$KD" import "$fixtures/tiny-bert" --out "$work/tiny.h5" >/dev/null
"$KD" data prepare --csv "$fixtures/train/toy-sentiment.csv" --text-column text --label-column label --name toy --out "$work/toy" >/dev/null
"$KD" finetune --model "$work/tiny.h5" --data "$work/toy" --out "$work/teacher.h5" --epochs 1 --batch-size 8 --max-length 16 \
    --max-steps 2 --threads 1 --replace-head >/dev/null 2>&1
"$KD" label --teacher "$work/teacher.h5" --data "$work/toy" --out "$work/labels.h5" --hidden all --max-length 16 --threads 1 >/dev/null 2>&1
cat >"$work/student.json" <<'EOF'
{"format": "distillery-student", "version": 1, "name": "kill-test",
 "architecture": {"layers": 1, "hidden_size": 16, "heads": 2, "intermediate_size": 24},
 "init": {"from": "teacher-slice", "pick": "last"}, "layer_map": {"kind": "uniform"},
 "losses": {"soft_ce": 1, "hard_ce": 0.5, "hidden_mse": 1}, "temperature": 2.0,
 "schedule": {"kind": "one-stage", "epochs": 6}, "training": {"learning_rate": 0.001, "batch_size": 8}}
EOF

# The command line of each run: output OUT, checkpoint CKPT (none for label).
args() {   # $1 command, $2 out, $3 checkpoint
    case $1 in
    label) echo label --teacher "$work/teacher.h5" --data "$work/toy" --out "$2" --hidden all --augment 4 --max-length 16 --threads 1 ;;
    distill) echo distill --teacher "$work/teacher.h5" --student "$work/student.json" --labels "$work/labels.h5" --data "$work/toy" \
        --out "$2" --checkpoint "$3" --eval-every 6 --checkpoint-every 2 --threads 1 ;;
    finetune) echo finetune --model "$work/tiny.h5" --data "$work/toy" --out "$2" --checkpoint "$3" --epochs 4 --batch-size 8 \
        --max-length 16 --eval-every 6 --checkpoint-every 2 --threads 1 --replace-head ;;
    esac
}

# The whole prepared folder as one hash (file names and contents), or "missing".
folder_sha() { [[ -d $1 ]] && (cd "$1" && sha256sum -- * | sha256sum | cut -c1-64) || echo missing; }
prepare_args() { echo data prepare --csv "$fixtures/train/toy-sentiment.csv" --text-column text --label-column label --name toy --out "$1" --seed "$2" --force; }

prepare_kill_test() {
    local dir="$work/prepare"; mkdir -p "$dir"
    "$KD" $(prepare_args "$dir/old" 1) >/dev/null
    local start seconds old new i delay pid state finished=0 kept=0 mixed=0
    start=$(date +%s.%N)
    "$KD" $(prepare_args "$dir/new" 2) >/dev/null
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    old=$(folder_sha "$dir/old") new=$(folder_sha "$dir/new")
    [[ $old != "$new" ]] || fail "prepare: seeds 1 and 2 gave the same folder; the test cannot tell old from new"
    for ((i = 1; i <= kills; i++)); do
        rm -rf "$dir/run"; mkdir -p "$dir/run"; cp -r "$dir/old" "$dir/run/toy"
        delay=$(awk -v s="$seconds" -v r="$RANDOM" 'BEGIN { printf "%.3f", s * r / 32768 }')
        "$KD" $(prepare_args "$dir/run/toy" 2) >/dev/null 2>&1 &
        pid=$!
        sleep "$delay"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        state=$(folder_sha "$dir/run/toy")
        if [[ $state == "$new" ]]; then finished=$((finished + 1))
        elif [[ $state == "$old" ]]; then kept=$((kept + 1))
        else mixed=$((mixed + 1)); fail "prepare kill $i (after ${delay}s): the folder is neither the old nor the new one ($state): $(ls -a "$dir/run/toy" 2>&1)"
        fi
        "$KD" $(prepare_args "$dir/run/toy" 2) >"$dir/rerun.log" 2>&1 || { fail "prepare kill $i: the rerun failed: $(tail -1 "$dir/rerun.log")"; continue; }
        [[ $(folder_sha "$dir/run/toy") == "$new" ]] || fail "prepare kill $i: after the rerun the folder differs from an uninterrupted run"
        left=$(find "$dir/run" -maxdepth 1 -name '.toy.*' | wc -l)
        ((left == 0)) || fail "prepare kill $i: $left staging folder(s) left after the rerun: $(ls -a "$dir/run")"
    done
    echo "prepare: $kills kills at random points of a ${seconds%???????}s run; $finished had swapped in the new folder, $kept still held the old one whole, $mixed were neither"
}

for command in "${commands[@]}"; do
    if [[ $command == prepare ]]; then prepare_kill_test; continue; fi
    dir="$work/$command"; mkdir -p "$dir/ref" "$dir/run"
    start=$(date +%s.%N)
    "$KD" $(args "$command" "$dir/ref/out.h5" "$dir/ref/out.ckpt.h5") >/dev/null 2>&1
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    reference=$(sha "$dir/ref/out.h5")
    out="$dir/run/out.h5" ckpt="$dir/run/out.ckpt.h5"
    resumed=0 fresh=0 finished=0 mismatches=0
    for ((i = 1; i <= kills; i++)); do
        rm -f "$dir/run/"* "$dir/run/".out.* 2>/dev/null || true
        delay=$(awk -v s="$seconds" -v r="$RANDOM" 'BEGIN { printf "%.3f", s * r / 32768 }')
        "$KD" $(args "$command" "$out" "$ckpt") >/dev/null 2>&1 &
        pid=$!
        sleep "$delay"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        # Anything under the final name is whole: the run had finished, so it is the reference.
        if [[ -e $out ]]; then
            finished=$((finished + 1))
            [[ $(sha "$out") == "$reference" ]] || fail "$command kill $i (after ${delay}s): a file under the final name differs from the reference"
        fi
        resume=()
        if [[ $command != label && -e $ckpt ]]; then resume=(--resume "$ckpt"); resumed=$((resumed + 1)); else fresh=$((fresh + 1)); fi
        if ! "$KD" $(args "$command" "$out" "$ckpt") "${resume[@]}" >"$dir/rerun.log" 2>&1; then
            fail "$command kill $i (after ${delay}s): the rerun failed: $(tail -1 "$dir/rerun.log")"; continue
        fi
        if [[ $(sha "$out") != "$reference" ]]; then
            mismatches=$((mismatches + 1)); fail "$command kill $i (after ${delay}s, ${resume[*]:-fresh}): final bytes differ from the uninterrupted run"
        fi
        if [[ $command != label ]]; then   # the training log: each step once, in order, after any resume
            awk -F'[:,]' '/"epoch"/ { if ($2 <= last) bad = 1; last = $2 } END { exit bad }' "$dir/run/out.metrics.jsonl" \
                || fail "$command kill $i: out.metrics.jsonl repeats or reorders steps after the resume"
        fi
        left=$(find "$dir/run" -name '.*partial-*' -o -name '.*tmp-*' | wc -l)
        ((left == 0)) || fail "$command kill $i: $left partial file(s) left after the rerun: $(ls -a "$dir/run")"
    done
    echo "$command: $kills kills at random points of a ${seconds%???????}s run; $finished had finished, $resumed resumed from a checkpoint, $fresh started over; $mismatches byte mismatches"
done
((failures == 0)) && echo "kill test: all runs ended bit-identical to the uninterrupted run" || { echo "kill test: $failures failure(s)"; exit 1; }
