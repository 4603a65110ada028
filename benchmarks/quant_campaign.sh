#!/usr/bin/env bash
# Every measurement the quantization issue asks for, on this machine, in one command: what
# a stop on a new kind of CPU (AVX-512, VNNI, BF16) runs first. Each step's output goes to
# its own log under out/campaign-<host>-<UTC time>/, with the CPU named at the top:
#   1. kd --version and the CPU's model and vector flags;
#   2. benchmarks/kernels_bench.sh: every kernel kind, then `ops`, on every path this CPU has;
#   3. the fp32 teacher and its int8-dynamic, int4-g32 and bf16 files (kd quantize);
#   4. peer_quant.py: those against ONNX Runtime's quantizers, batch 1 and 32, seq 128,
#      2 threads, cosine on the 80 sentences, taking turns;
#   5. peer_latency.py: fp32 kd against ORT, batch 1 at seq 16, 32, 64 and 128 and batch 32
#      at 128, 1 and 2 threads;
#   6. kd bench latency of the int8 file at batch 32 on the default path and forced to AVX2
#      (the AVX2-only path's ratio to VNNI), in turns;
#   7. the int8 and bf16 files at batch 1 and 32 on each route (DISTILLERY_QUANT_ROUTE=int:
#      the integer / vdpbf16ps kernels; fp32: weights dequantized into the fp32 GEMM), in turns.
# Needs `make teacher` and scripts/setup-reference-env.sh (.venv-ref with onnxruntime, onnx_ir).
#   benchmarks/quant_campaign.sh                          three rounds of everything
#   ROUNDS=1 SECONDS_PER=1 benchmarks/quant_campaign.sh   one quick round: 5 min 18 s on Zen 2
set -euo pipefail
cd "$(dirname "$0")/.."
KD=${KD:-.build/release/kd}
PY=${PY:-.venv-ref/bin/python}
TEACHER=${TEACHER:-teachers/minilm-l6/teacher.h5}
ROUNDS=${ROUNDS:-3}
SECONDS_PER=${SECONDS_PER:-3}
for need in "$KD" "$TEACHER" "$PY"; do
    [[ -e $need ]] || { echo "quant_campaign: $need is missing — run make teacher and scripts/setup-reference-env.sh" >&2; exit 1; }
done
out=out/campaign-$(hostname -s)-$(date -u +%Y%m%dT%H%M)
mkdir -p "$out"
echo "quant_campaign: logs in $out"
step() {   # name command...: runs it, its output to $out/name.log, and says how long it took
    local name=$1; shift
    local t0=$SECONDS
    printf '$ %s\n' "$*" >"$out/$name.log"
    "$@" >>"$out/$name.log" 2>&1 || { echo "quant_campaign: step $name failed, see $out/$name.log" >&2; exit 1; }
    echo "  $name: $((SECONDS - t0)) s"
}

{
    date -u
    grep -m1 'model name' /proc/cpuinfo
    grep -m1 'cpu family' /proc/cpuinfo
    grep -m1 '^model\s' /proc/cpuinfo
    echo "cores: $(nproc)"
    echo "vector flags: $(grep -o -w 'avx2\|fma\|avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    "$KD" --version
} >"$out/cpu.txt"
cat "$out/cpu.txt"

paths="ref"
grep -qw avx2 /proc/cpuinfo && paths="avx2 $paths"
grep -qw avx512f /proc/cpuinfo && paths="avx512 $paths"
step kernels benchmarks/kernels_bench.sh fp32,int8,int4,bf16,int8b,dq8,dq4,dqbf "${paths% ref}"
step kernel-ops benchmarks/kernels_bench.sh ops "${paths% ref}"

models=$out/models
mkdir -p "$models"
for scheme in int8-dynamic int4-g32 bf16; do
    step "quantize-$scheme" "$KD" quantize --model "$TEACHER" --scheme "$scheme" --out "$models/$scheme.h5"
done
kdmodels="fp32=$TEACHER,int8=$models/int8-dynamic.h5,int4-g32=$models/int4-g32.h5,bf16=$models/bf16.h5"
step peer-quant "$PY" benchmarks/peer_quant.py --model-dir .cache/minilm-l6 \
    --sentences benchmarks/data/cosine-sentences.txt --batch 1,32 --seq 128 --threads 2 \
    --rounds "$ROUNDS" --kd-seconds "$SECONDS_PER" --kd "$KD" --kd-models "$kdmodels"
for seq in 16 32 64 128; do
    step "peer-latency-b1-seq$seq" "$PY" benchmarks/peer_latency.py --model-dir .cache/minilm-l6 \
        --backends ort,kd --batch 1 --seq "$seq" --threads 1,2 --rounds "$ROUNDS" --kd "$KD" --kd-model "$TEACHER"
done
step peer-latency-b32 "$PY" benchmarks/peer_latency.py --model-dir .cache/minilm-l6 \
    --backends ort,kd --batch 32 --seq 128 --threads 1,2 --rounds "$ROUNDS" --kd "$KD" --kd-model "$TEACHER"
for r in $(seq "$ROUNDS"); do
    step "int8-b32-default-r$r" "$KD" bench latency --model "$models/int8-dynamic.h5" --batch-size 32 --threads 2 --seconds "$SECONDS_PER"
    step "int8-b32-avx2-r$r" env DISTILLERY_KERNELS=avx2 "$KD" bench latency --model "$models/int8-dynamic.h5" --batch-size 32 --threads 2 --seconds "$SECONDS_PER"
done
for r in $(seq "$ROUNDS"); do
    for route in int fp32; do
        step "routes-$route-r$r" env DISTILLERY_QUANT_ROUTE=$route "$KD" bench latency --model "$models/int8-dynamic.h5" \
            --model "$models/bf16.h5" --batch-size 1,32 --threads 2 --seconds "$SECONDS_PER" --rounds 1
    done
done
echo "quant_campaign: done; the tables are at the end of each log in $out"
