#!/usr/bin/env bash
# Builds Distillery's libFuzzer harnesses (Fuzz/, with address sanitizer, release) and runs
# each one for SECONDS on its committed seed corpus Fuzz/corpus/<target> plus a work corpus
# in .build-fuzz/corpus/<target> (new inputs go there, never into the committed seeds).
# Crashes are written to .build-fuzz/crashes/<target>/ and fail the script.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 5 seconds, every target
# Prints one line per target: executions, seconds, crashes (the figures docs/fuzzing.md cites).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}; shift || true
all=(fuzz-safetensors fuzz-gguf fuzz-config fuzz-vocab fuzz-student fuzz-csv fuzz-dataset fuzz-hdf5 fuzz-recipe fuzz-report fuzz-quantized)
targets=("${@:-${all[@]}}")
build=.build-fuzz
mkdir -p "$build"
if ! swift build -c release --sanitize fuzzer --sanitize address --package-path Fuzz --build-path "$build" \
        >"$build/build.log" 2>&1; then
    grep -E "error" "$build/build.log" | head -20
    echo "fuzz: the harnesses did not build (log: $build/build.log) — a library target added to Package.swift needs its line in Fuzz/Package.swift too"
    exit 1
fi
status=0
for t in "${targets[@]}"; do
    work="$build/corpus/$t" crashes="$build/crashes/$t"
    mkdir -p "$work" "$crashes"
    log="$build/$t.log"
    if ! ASAN_OPTIONS=detect_leaks=0 "$build/release/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "Fuzz/corpus/$t" >"$log" 2>&1; then
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    found=$(find "$crashes" -type f | wc -l)
    echo "$t: ${runs:-0} executions in ${seconds}s, $found crash files$( ((found)) && echo " ($crashes; log $log)")"
    ((found == 0)) || status=1
done
exit $status
