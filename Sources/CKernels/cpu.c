// The one CPU-feature probe of CKernels and the switch that forces a kernel path.
//
// Every dispatcher asks dk_kernel_path() which build to run: the portable `_ref` code or
// the AVX2+FMA one. By default that is the best path the CPU has; the environment
// variable DISTILLERY_KERNELS=ref forces the portable code (tests run the suite on every
// path the machine has), DISTILLERY_KERNELS=avx2 asks for AVX2+FMA (taken only where the
// CPU has it). The CPU's AVX-512 features are reported, for `kd --version` and benchmark
// records; no kernel has an AVX-512 build yet. Read once, then cached.
#include "ckernels.h"
#include <stdlib.h>
#include <string.h>

static int features = -1, path = -1, forced = 0;

int dk_cpu_features(void) {
    if (features < 0) {
        __builtin_cpu_init();
        int f = 0;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f |= DK_CPU_AVX2_FMA;
        if (__builtin_cpu_supports("avx512f")) f |= DK_CPU_AVX512F;
        if (__builtin_cpu_supports("avx512vnni")) f |= DK_CPU_AVX512_VNNI;
        if (__builtin_cpu_supports("avx512bf16")) f |= DK_CPU_AVX512_BF16;
        features = f;
    }
    return features;
}

int dk_kernel_path(void) {
    if (path < 0) {
        const int best = (dk_cpu_features() & DK_CPU_AVX2_FMA) ? DK_PATH_AVX2 : DK_PATH_REF;
        const char *want = getenv("DISTILLERY_KERNELS");
        if (want && strcmp(want, "ref") == 0) { path = DK_PATH_REF; forced = 1; }
        else if (want && strcmp(want, "avx2") == 0) { path = best; forced = 1; }
        else path = best;
    }
    return path;
}

int dk_kernel_path_forced(void) {
    dk_kernel_path();
    return forced;
}

int dk_has_avx2(void) { return dk_kernel_path() == DK_PATH_AVX2; }
