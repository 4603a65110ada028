// dk_target: the target attributes of the ISA builds, and the intrinsics they use; private
// to CKernels. Each vector kernel is a function marked DK_AVX2, DK_AVX512, DK_AVX512_VNNI or
// DK_AVX512_BF16, compiled for that ISA whatever the compiler's -m flags (no -march), and
// run only when dk_kernel_path() says the CPU has it.
//
// The AVX-512 emulation build (-DDK_EMULATE_AVX512, with SIMDe's headers, libsimde-dev):
// the AVX-512 intrinsics become SIMDe's portable versions compiled for AVX2 and dk_cpu_features
// reports AVX-512 (VNNI and BF16 unless DISTILLERY_EMULATE_VNNI=0 / _BF16=0), so a CPU
// without AVX-512 runs the AVX-512 kernels, slowly but with the same arithmetic, and the
// tests check them against `_ref` (`make test` does this when the CPU lacks AVX-512 VNNI,
// BW or BF16; scripts/test-avx512-emulated.sh). Never a release build.
#ifndef DISTILLERY_DK_TARGET_H
#define DISTILLERY_DK_TARGET_H

#include <immintrin.h>

#define DK_INLINE static inline __attribute__((always_inline))
#define DK_AVX2 __attribute__((target("avx2,fma")))

#ifdef DK_EMULATE_AVX512
#if !defined(__AVX2__) || !defined(__FMA__)
#error "DK_EMULATE_AVX512 needs -mavx2 -mfma (SIMDe then computes each fused multiply-add in one rounding)"
#endif
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include "dk_emulate_avx512.h"
#define DK_AVX512 DK_AVX2
#define DK_AVX512_VNNI DK_AVX2
#define DK_AVX512_BF16 DK_AVX2
#else
#define DK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define DK_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))
#define DK_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")))
#endif

#endif
