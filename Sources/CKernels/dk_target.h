// dk_target: the target attributes of the ISA builds, and the intrinsics they use; private
// to CKernels. Each vector kernel is a function marked DK_AVX2, DK_AVX512, DK_AVX512_VNNI or
// DK_AVX512_BF16, compiled for that ISA whatever the compiler's -m flags (no -march), and
// run only when dk_kernel_path() says the CPU has it.
#ifndef DISTILLERY_DK_TARGET_H
#define DISTILLERY_DK_TARGET_H

#include <immintrin.h>

#define DK_INLINE static inline __attribute__((always_inline))
#define DK_AVX2 __attribute__((target("avx2,fma")))

#define DK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define DK_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))
#define DK_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")))

#endif
