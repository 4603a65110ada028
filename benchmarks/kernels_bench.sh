#!/usr/bin/env bash
# Builds benchmarks/kernels_bench.c against the CKernels sources and runs it on every kernel
# path this CPU has (DISTILLERY_KERNELS=avx512|avx2|ref), single-threaded.
# Usage: benchmarks/kernels_bench.sh [fp32,int8,int4,bf16,int8b,dq8,dq4,dqbf | ops] [paths, default "avx512 avx2"]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TMPDIR:-/tmp}/kernels_bench
clang -O3 -ISources/CKernels/include -ISources/CKernels benchmarks/kernels_bench.c Sources/CKernels/*.c \
    -lm -lpthread -o "$bin"
for path in ${2:-avx512 avx2}; do
    DISTILLERY_KERNELS=$path "$bin" "${1:-fp32,int8,int4,bf16,int8b,dq8,dq4,dqbf}"
done
