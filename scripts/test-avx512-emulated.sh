#!/usr/bin/env bash
# The AVX-512 kernels, checked on a CPU without AVX-512. Builds the package a second time
# (.build-avx512emu) with -DDK_EMULATE_AVX512: every AVX-512 intrinsic becomes SIMDe's
# portable version (libsimde-dev), compiled for AVX2 with fused multiply-adds, and the CPU
# probe reports AVX-512, VNNI and BF16 (Sources/CKernels/dk_target.h). Then the kernel,
# parity and gradient tests and those of quantized models run on that path against `_ref`,
# the double-precision products and the HF/PyTorch golden files, as on a real AVX-512
# machine. It checks arithmetic, masks and packing — not speed, and not the instruction
# encodings themselves. Then the kernel and quantization tests again as an AVX-512 CPU
# without BF16, and without VNNI and BF16.
#   scripts/test-avx512-emulated.sh [FILTER]   default: the Makefile's EMULATED_TESTS
# `make test` runs it when the CPU lacks AVX-512 VNNI, BW or BF16 (what it has runs for real).
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-'TensorTests|TinyParityTests|OneForwardTests|ModelGradientTests|TrainingParityTests|OpGradientTests|QuantizationTests|ExportTests|QuantizeTests'}
if [[ ! -f /usr/include/simde/x86/avx512.h ]]; then
    echo "test-avx512-emulated: SIMDe's headers are missing — apt-get install libsimde-dev (scripts/setup.sh does)" >&2
    exit 1
fi
# Written against SIMDe 0.7.4 (Debian 12); an older one lacks intrinsics the kernels use.
simde=$(awk '/define SIMDE_VERSION_(MAJOR|MINOR|MICRO) /{printf "%s ", $3}' /usr/include/simde/simde-common.h)
read -r major minor micro <<<"$simde"
if (( major * 10000 + minor * 100 + micro < 704 )); then
    echo "test-avx512-emulated: skipped — SIMDe ${major}.${minor}.${micro} is older than 0.7.4"
    exit 0
fi
if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
    echo "test-avx512-emulated: skipped — the emulation runs on AVX2+FMA, which this CPU lacks"
    exit 0
fi
flags=(--scratch-path .build-avx512emu -Xcc -DDK_EMULATE_AVX512 -Xcc -mavx2 -Xcc -mfma -Xcc -ffp-contract=off)
swift build --build-tests "${flags[@]}"
version=$(DISTILLERY_KERNELS=avx512 .build-avx512emu/debug/kd --version)
if [[ $version != *"AVX-512 kernels"*"emulated"* ]]; then
    echo "test-avx512-emulated: the emulation build did not take its AVX-512 path: $version" >&2
    exit 1
fi
echo "test-avx512-emulated: $version"
DISTILLERY_KERNELS=avx512 swift test --skip-build --disable-swift-testing "${flags[@]}" --filter "$filter"
# Again as an AVX-512 CPU without AVX512_BF16 (Ice Lake, Cascade Lake: bf16 layers take the
# dequantizing route on the AVX-512 GEMM), and without VNNI either (Skylake-SP: int8 and int4
# too). A VNNI or BF16 instruction reached there aborts (dk_emulate_avx512.h).
for cpu in "1 0 Ice Lake" "0 0 Skylake-SP"; do
    read -r vnni bf16 name <<<"$cpu"
    echo "test-avx512-emulated: as an AVX-512 CPU without$([[ $vnni == 0 ]] && echo " VNNI and") BF16 ($name)"
    DISTILLERY_EMULATE_VNNI=$vnni DISTILLERY_EMULATE_BF16=$bf16 DISTILLERY_KERNELS=avx512 \
        swift test --skip-build --disable-swift-testing "${flags[@]}" --filter 'TensorTests|QuantizationTests|QuantizeTests|ExportTests'
done
