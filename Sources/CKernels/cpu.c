// The one CPU-feature probe of CKernels and the switch that forces a kernel path.
//
// Every dispatcher asks dk_kernel_path() which build to run: the portable `_ref` code or
// the AVX2+FMA one, or AVX-512 (F, BW, VL and DQ; the fp32 GEMM, GELU, the attention
// softmax and the GRU gates have builds for it, the int8/int4 GEMMs too where the CPU has
// VNNI and the bf16 one where it has AVX512_BF16; the other kernels run their AVX2 build
// there). By default that is the
// best path the CPU has; the environment variable DISTILLERY_KERNELS=ref|avx2|avx512
// forces a path (tests run the suite on every path the machine has), taken only where the
// CPU has it (else the best one below it). Read once, then cached.
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
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
            f |= DK_CPU_AVX512_BW_VL;
#ifdef DK_EMULATE_AVX512
        // The emulation build (dk_target.h): every AVX-512 kernel runs on AVX2; with
        // DISTILLERY_EMULATE_BF16=0 as on a CPU without AVX512_BF16 (Ice Lake, Cascade Lake),
        // with DISTILLERY_EMULATE_VNNI=0 also without VNNI (Skylake-SP).
        if (f & DK_CPU_AVX2_FMA) {
            const char *bf16 = getenv("DISTILLERY_EMULATE_BF16"), *vnni = getenv("DISTILLERY_EMULATE_VNNI");
            f |= DK_CPU_AVX512F | DK_CPU_AVX512_BW_VL | DK_CPU_AVX512_EMULATED;
            if (!(bf16 && strcmp(bf16, "0") == 0)) f |= DK_CPU_AVX512_BF16;
            if (!(vnni && strcmp(vnni, "0") == 0)) f |= DK_CPU_AVX512_VNNI;
        }
#endif
        features = f;
    }
    return features;
}

int dk_kernel_path(void) {
    if (path < 0) {
        const int f = dk_cpu_features();
        const int avx512 = DK_CPU_AVX2_FMA | DK_CPU_AVX512F | DK_CPU_AVX512_BW_VL;
        const int best = (f & avx512) == avx512 ? DK_PATH_AVX512 : (f & DK_CPU_AVX2_FMA) ? DK_PATH_AVX2 : DK_PATH_REF;
        const char *want = getenv("DISTILLERY_KERNELS");
        int wanted = best;
        forced = 1;
        if (want && strcmp(want, "ref") == 0) wanted = DK_PATH_REF;
        else if (want && strcmp(want, "avx2") == 0) wanted = DK_PATH_AVX2;
        else if (want && strcmp(want, "avx512") == 0) wanted = DK_PATH_AVX512;
        else forced = 0;
        path = wanted < best ? wanted : best;
    }
    return path;
}

int dk_kernel_path_forced(void) {
    dk_kernel_path();
    return forced;
}

int dk_has_avx2(void) { return dk_kernel_path() >= DK_PATH_AVX2; }

int dk_has_avx512(void) { return dk_kernel_path() == DK_PATH_AVX512; }

int dk_has_avx512_vnni(void) { return dk_has_avx512() && (dk_cpu_features() & DK_CPU_AVX512_VNNI); }

int dk_has_avx512_bf16(void) { return dk_has_avx512() && (dk_cpu_features() & DK_CPU_AVX512_BF16); }
